# Dalli: SASL PLAIN over the binary protocol (Dalli's default), one set/get round trip.
require 'dalli'
require 'logger'

address, key, value = ARGV
# Dalli logs to stdout by default; stdout carries only the verdict.
Dalli.logger = Logger.new($stderr)

# TLS when a CA is named: the server's certificate must verify, its name (or IP address) included; a
# client certificate for mutual TLS when one is named too.
def ssl_context
  ca = ENV['MEMCACHED_TLS_CA_FILE']
  return nil unless ca

  context = OpenSSL::SSL::SSLContext.new
  context.set_params(verify_mode: OpenSSL::SSL::VERIFY_PEER, verify_hostname: true, ca_file: ca)
  if ENV['MEMCACHED_TLS_CERT_FILE']
    context.cert = OpenSSL::X509::Certificate.new(File.read(ENV.fetch('MEMCACHED_TLS_CERT_FILE')))
    context.key = OpenSSL::PKey.read(File.read(ENV.fetch('MEMCACHED_TLS_KEY_FILE')))
  end
  context
end

verdict =
  begin
    client = Dalli::Client.new(address,
                               username: ENV.fetch('MEMCACHED_USERNAME'), password: ENV.fetch('MEMCACHED_PASSWORD'),
                               socket_timeout: 10, socket_max_failures: 1, down_retry_delay: 0,
                               ssl_context: ssl_context)
    # raw: a plain string other clients can read, not a Ruby Marshal blob.
    if client.set(key, value, 60, raw: true)
      got = client.get(key)
      got == value ? "ok #{got}" : "failed: read back #{got.inspect}"
    else
      'failed: set returned false'
    end
  rescue StandardError => e
    "failed: #{e.class}: #{e.message}"
  ensure
    client&.close
  end
puts "ROUNDTRIP #{verdict}"
exit(verdict.start_with?('ok ') ? 0 : 1)
