// memjs: a pure-JavaScript binary-protocol client with SASL PLAIN, one set/get round trip.
/* global process, console -- Node's, in the clients image */
import memjs from 'memjs';

const [address, key, value] = process.argv.slice(2);

async function roundTrip() {
  const client = memjs.Client.create(address, {
    username: process.env.MEMCACHED_USERNAME,
    password: process.env.MEMCACHED_PASSWORD,
    retries: 0,
    timeout: 10,
    conntimeout: 10,
    keepAlive: false,
    // memjs logs to stdout by default; stdout carries only the verdict.
    logger: { log: (...args) => console.error(...args) },
  });
  try {
    if (!(await client.set(key, value, { expires: 60 }))) return 'failed: set returned false';
    const got = (await client.get(key)).value?.toString();
    return got === value ? `ok ${got}` : `failed: read back ${got}`;
  } catch (error) {
    // memjs rejects a failed authentication without a reason.
    return `failed: ${error instanceof Error ? error.message : (error ?? 'memjs gave no reason')}`;
  } finally {
    client.close();
  }
}

roundTrip().then((verdict) => {
  console.log(`ROUNDTRIP ${verdict.replace(/\n/g, ' ')}`);
  process.exitCode = verdict.startsWith('ok ') ? 0 : 1;
});
