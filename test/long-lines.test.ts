import { describe, expect, it } from 'vitest';
import { longLines, MAX_LINE } from '../scripts/long-lines.js';

const line = (n: number, char = 'a') => char.repeat(n);

describe('the Markdown line-length rule', () => {
  it('reports a line one character too long, with its number and length (the control)', () => {
    expect(longLines(`# Title\n${line(MAX_LINE + 1)}\n`)).toEqual([{ line: 2, length: MAX_LINE + 1 }]);
  });

  it('accepts a line of exactly the limit, counted in characters, not bytes', () => {
    expect(longLines(`${line(MAX_LINE)}\n${line(MAX_LINE, '×')}\r\n`)).toEqual([]);
    expect(longLines(line(MAX_LINE + 1, '×'))).toEqual([{ line: 1, length: MAX_LINE + 1 }]);
  });

  it('reports long table rows and long commands in code blocks like prose', () => {
    const row = `| ${line(60)} | ${line(60)} |`;
    expect(longLines(`| a | b |\n| --- | --- |\n${row}\n\`\`\`sh\n${row}\n\`\`\`\n`)).toEqual([
      { line: 3, length: row.length },
      { line: 5, length: row.length },
    ]);
  });

  it('allows a line that is only a URL or a link definition, not a URL inside prose', () => {
    const url = `https://example.org/${line(MAX_LINE)}`;
    expect(longLines(`${url}\n<${url}>\n[ref]: ${url}\n`)).toEqual([]);
    expect(longLines(`see ${url}`)).toEqual([{ line: 1, length: url.length + 4 }]);
  });

  it("allows the bench's generated block only, and only between its markers", () => {
    const long = line(MAX_LINE + 5);
    const text = [
      '<!-- bench:start -->',
      long,
      '<!-- bench:end -->',
      long,
      '<!-- tls-pki:start -->',
      long,
      '<!-- tls-pki:end -->',
    ].join('\n');
    expect(longLines(text)).toEqual([
      { line: 4, length: long.length },
      { line: 6, length: long.length },
    ]);
  });
});
