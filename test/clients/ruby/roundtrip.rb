# Dalli: SASL PLAIN over the binary protocol (Dalli's default), one set/get round trip.
require 'dalli'
require 'logger'

address, key, value = ARGV
# Dalli logs to stdout by default; stdout carries only the verdict.
Dalli.logger = Logger.new($stderr)

verdict =
  begin
    client = Dalli::Client.new(address, username: ENV.fetch('MEMCACHED_USERNAME'), password: ENV.fetch('MEMCACHED_PASSWORD'),
                                         socket_timeout: 2, socket_max_failures: 1, down_retry_delay: 0)
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
