import { describe, expect, it } from 'vitest';
import { parseProcNet, procNetAddress, readableAddress } from './helpers/proc-net.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 020012AC:2BCB 00000000:0000 0A 00000000:00000000 00:00000000 00000000 11211        0 123 1 0000000000000000 100 0 0 10 0
   1: 0100007F:2BCC 00000000:0000 0A 00000000:00000000 00:00000000 00000000 11211        0 124 1 0000000000000000 100 0 0 10 0
   2: 020012AC:2BCB 010012AC:D431 01 00000000:00000000 00:00000000 00000000 11211        0 125 1 0000000000000000 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:2BCB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 11211        0 126 1 0000000000000000 100 0 0 10 0
`;

describe('proc-net', () => {
  it('parses IPv4 and IPv6 socket lines from a concatenation, skipping headers', () => {
    expect(parseProcNet(TCP + TCP6)).toEqual([
      { localAddress: '020012AC', localPort: 11211, state: '0A' },
      { localAddress: '0100007F', localPort: 11212, state: '0A' },
      { localAddress: '020012AC', localPort: 11211, state: '01' },
      { localAddress: '0000000000000000FFFF00000100007F', localPort: 11211, state: '0A' },
    ]);
    expect(parseProcNet('')).toEqual([]);
  });

  it('writes and reads addresses in the kernel byte order', () => {
    expect(procNetAddress('172.18.0.2')).toBe('020012AC');
    expect(readableAddress('020012AC')).toBe('172.18.0.2');
    expect(readableAddress('0000000000000000FFFF00000100007F')).toBe('0000:0000:0000:0000:0000:ffff:7f00:0001');
  });
});
