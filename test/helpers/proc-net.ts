/** One socket from /proc/net/{tcp,tcp6,udp,udp6}: local address (kernel hex), port, and state. */
export interface ProcNetSocket {
  /** The address as the kernel writes it: 8 hex digits (IPv4, little-endian) or 32 (IPv6). */
  readonly localAddress: string;
  readonly localPort: number;
  /** Two hex digits: 0A = TCP LISTEN, 07 = UDP unconnected. */
  readonly state: string;
}

export const TCP_LISTEN = '0A';
const MEMCACHED_PORT = 11211;

/** Every socket line of /proc/net/{tcp,udp}{,6} text (header lines, from any concatenation, are skipped). */
export function parseProcNet(text: string): ProcNetSocket[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => /^\d+:$/.test(fields[0] ?? '') && /^[0-9A-F]+:[0-9A-F]{4}$/.test(fields[1] ?? ''))
    .map((fields) => {
      const [address = '', port = '0'] = (fields[1] ?? '').split(':');
      return { localAddress: address, localPort: Number.parseInt(port, 16), state: fields[3] ?? '' };
    });
}

/** An IPv4 address as /proc/net/tcp writes it (little-endian hex). */
export function procNetAddress(ip: string): string {
  return ip
    .split('.')
    .reverse()
    .map((octet) => Number(octet).toString(16).padStart(2, '0').toUpperCase())
    .join('');
}

/** The kernel's hex address as text (IPv4 dotted, IPv6 as eight groups), for failure messages. */
export function readableAddress(hex: string): string {
  const bytesOf = (word: string) => (word.match(/../g) ?? []).reverse();
  if (hex.length === 8)
    return bytesOf(hex)
      .map((b) => Number.parseInt(b, 16))
      .join('.');
  // IPv6: four 32-bit words, each in host (little-endian) order.
  const bytes = (hex.match(/.{8}/g) ?? []).flatMap(bytesOf).join('');
  return (bytes.match(/.{4}/g) ?? []).join(':').toLowerCase();
}

/** memcached's sockets (port 11211) in /proc/net text: local address (kernel hex) and state. */
export function socketsOnPort(procNet: string): Array<{ localAddress: string; state: string }> {
  return parseProcNet(procNet)
    .filter((socket) => socket.localPort === MEMCACHED_PORT)
    .map(({ localAddress, state }) => ({ localAddress, state }));
}

/** The /proc/net tables of a network namespace that hold sockets a peer could reach: IP, raw, unix, packet. */
export const SOCKET_TABLES = ['tcp', 'tcp6', 'udp', 'udp6', 'raw', 'raw6', 'unix', 'packet'] as const;

/** Shell that prints each table of SOCKET_TABLES after a `== name` line. */
export const DUMP_SOCKET_TABLES = `for t in ${SOCKET_TABLES.join(' ')}; do echo "== $t"; cat /proc/net/$t; done`;

/** A listening unix socket: the kernel's __SO_ACCEPTCON flag in /proc/net/unix's Flags column. */
const UNIX_ACCEPTING = 0x10000;

/**
 * Every socket in a DUMP_SOCKET_TABLES dump that takes connections or datagrams, one line each, sorted:
 * `tcp ADDRESS:PORT` (listening), `udp ADDRESS:PORT` and `raw ADDRESS:PROTOCOL` (every one), `unix PATH`
 * (listening or bound to a name), `packet PROTOCOL`. Addresses are readable (IPv4 dotted, IPv6 grouped).
 */
export function reachableSockets(dump: string): string[] {
  const found: string[] = [];
  for (const section of dump.split(/^== /m).slice(1)) {
    const [table = '', ...lines] = section.split('\n');
    const family = table.replace(/6$/, '');
    if (family === 'tcp' || family === 'udp' || family === 'raw') {
      for (const socket of parseProcNet(lines.join('\n'))) {
        if (family === 'tcp' && socket.state !== TCP_LISTEN) continue;
        found.push(`${family} ${readableAddress(socket.localAddress)}:${socket.localPort}`);
      }
    } else if (family === 'unix') {
      for (const fields of lines
        .slice(1)
        .map((line) => line.trim().split(/\s+/))
        .filter((f) => f.length >= 7)) {
        const path = fields[7];
        if (path || (Number.parseInt(fields[3] ?? '0', 16) & UNIX_ACCEPTING) !== 0)
          found.push(`unix ${path ?? '(unnamed)'}`);
      }
    } else if (family === 'packet') {
      for (const fields of lines
        .slice(1)
        .map((line) => line.trim().split(/\s+/))
        .filter((f) => f.length >= 4)) {
        found.push(`packet ${fields[3]}`);
      }
    }
  }
  return found.sort();
}
