import java.util.concurrent.TimeUnit;
import net.spy.memcached.AddrUtil;
import net.spy.memcached.ConnectionFactoryBuilder;
import net.spy.memcached.MemcachedClient;
import net.spy.memcached.auth.AuthDescriptor;
import net.spy.memcached.auth.PlainCallbackHandler;

/** spymemcached: SASL PLAIN over the binary protocol, one set/get round trip. */
public final class RoundTrip {
  public static void main(String[] args) {
    String address = args[0], key = args[1], value = args[2];
    String verdict;
    MemcachedClient client = null;
    try {
      // PLAIN only: the server offers nothing else, and AuthDescriptor.typical() would also try CRAM-MD5.
      AuthDescriptor auth = new AuthDescriptor(new String[] {"PLAIN"},
          new PlainCallbackHandler(System.getenv("MEMCACHED_USERNAME"), System.getenv("MEMCACHED_PASSWORD")));
      client = new MemcachedClient(new ConnectionFactoryBuilder()
          .setProtocol(ConnectionFactoryBuilder.Protocol.BINARY)
          .setAuthDescriptor(auth)
          .setAuthWaitTime(10000)
          .setOpTimeout(10000)
          .build(), AddrUtil.getAddresses(address));
      // A refused authentication is retried, not reported: the set then waits out this timeout. Generous:
      // the suite runs a dozen clients at once on a loaded machine (2 s timed out in CI).
      if (!client.set(key, 60, value).get(12, TimeUnit.SECONDS)) {
        verdict = "failed: set returned false";
      } else {
        Object got = client.get(key);
        verdict = value.equals(got) ? "ok " + got : "failed: read back " + got;
      }
    } catch (Exception e) {
      verdict = "failed: " + e;
    } finally {
      if (client != null) client.shutdown(1, TimeUnit.SECONDS);
    }
    System.out.println("ROUNDTRIP " + verdict.replace('\n', ' '));
    // spymemcached's I/O thread keeps retrying a failed authentication: end the JVM explicitly.
    System.exit(verdict.startsWith("ok ") ? 0 : 1);
  }
}
