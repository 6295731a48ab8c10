/** The last `size` lines seen: what failure messages quote from a command's or the engine's output. */
export class LineTail {
  private readonly kept: string[] = [];

  constructor(private readonly size: number) {}

  push(line: string): void {
    this.kept.push(line);
    if (this.kept.length > this.size) this.kept.shift();
  }

  lines(): string[] {
    return [...this.kept];
  }
}
