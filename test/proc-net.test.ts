import { describe, expect, it } from 'vitest';
import { parseProcNet, procNetAddress, reachableSockets, readableAddress } from './helpers/proc-net.js';

const TCP = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 020012AC:2BCB 00000000:0000 0A 00000000:00000000 00:00000000 00000000 11211        0 123 1 ' +
    '0000000000000000 100 0 0 10 0',
  '   1: 0100007F:2BCC 00000000:0000 0A 00000000:00000000 00:00000000 00000000 11211        0 124 1 ' +
    '0000000000000000 100 0 0 10 0',
  '   2: 020012AC:2BCB 010012AC:D431 01 00000000:00000000 00:00000000 00000000 11211        0 125 1 ' +
    '0000000000000000 20 4 30 10 -1',
  '',
].join('\n');
const TCP6 = [
  '  sl  local_address                         remote_address                        st tx_queue ' +
    'rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 0000000000000000FFFF00000100007F:2BCB 00000000000000000000000000000000:0000 0A ' +
    '00000000:00000000 00:00000000 00000000 11211        0 126 1 0000000000000000 100 0 0 10 0',
  '',
].join('\n');

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

  it(
    'lists every reachable socket of every table: listening ' +
      'TCP, every UDP and raw, named or listening unix, packet',
    () => {
      const UDP = [
        '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout ' +
          'inode ref pointer drops',
        '  7: 0B00007F:B5C1 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99 2 ' +
          '0000000000000000 0',
        '',
      ].join('\n');
      const RAW = [
        '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout ' +
          'inode ref pointer drops',
        '  1: 00000000:0001 00000000:0000 07 00000000:00000000 00:00000000 00000000 11211        0 98 2 ' +
          '0000000000000000 0',
        '',
      ].join('\n');
      const UNIX = `Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 100 /run/memcached/admin.sock
0000000000000000: 00000003 00000000 00000000 0001 03 101
0000000000000000: 00000002 00000000 00010000 0001 01 102 @abstract
`;
      const PACKET = `sk               RefCnt Type Proto  Iface R Rmem   User   Inode
0000000000000000 3      3    0003   0     1 0      11211  103
`;
      const dump = [
        'tcp',
        TCP,
        'tcp6',
        TCP6,
        'udp',
        UDP,
        'udp6',
        '',
        'raw',
        RAW,
        'raw6',
        '',
        'unix',
        UNIX,
        'packet',
        PACKET,
      ].reduce((text, part, index) => (index % 2 === 0 ? `${text}== ${part}\n` : `${text}${part}`), '');
      expect(reachableSockets(dump)).toEqual([
        'packet 0003',
        'raw 0.0.0.0:1',
        'tcp 0000:0000:0000:0000:0000:ffff:7f00:0001:11211',
        'tcp 127.0.0.1:11212',
        'tcp 172.18.0.2:11211',
        'udp 127.0.0.11:46529',
        'unix /run/memcached/admin.sock',
        'unix @abstract',
      ]);
      // Nothing listening or bound: an empty list (the established TCP line and the unnamed unix socket are not).
      expect(reachableSockets('== tcp\n== unix\nNum RefCount Protocol Flags Type St Inode Path\n')).toEqual([]);
    },
  );
});
