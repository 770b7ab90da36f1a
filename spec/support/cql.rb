# frozen_string_literal: true

require "socket"

# One CQL statement sent to the test node over the native protocol (v4), for what the gem
# itself never does (DROP KEYSPACE after a spec that made its own). No authentication, no
# TLS: the test node's settings. Raises with the server's message when it refuses.
module Cql
  module_function

  def run(statement, host: SpecHelpers.cassandra_options[:hosts].first.split(":").first,
      port: SpecHelpers.cassandra_options[:port])
    Socket.tcp(host, port, connect_timeout: 10) do |socket|
      startup = { "CQL_VERSION" => "3.0.0" }
      body = [startup.size].pack("n") + startup.map { |k, v| short_string(k) + short_string(v) }.join
      exchange(socket, 0x01, body) # STARTUP; READY
      # QUERY: the statement, consistency ONE, no flags.
      exchange(socket, 0x07, [statement.bytesize].pack("N") + statement.b + [0x0001, 0].pack("nC"))
    end
  end

  def short_string(text)
    [text.bytesize].pack("n") + text.b
  end

  def exchange(socket, opcode, body)
    socket.write([0x04, 0, 1, opcode, body.bytesize].pack("CCnCN") + body)
    _version, _flags, _stream, reply, length = read(socket, 9).unpack("CCnCN")
    payload = read(socket, length)
    if reply.zero? # ERROR: code, then the message
      size = payload[4, 2].unpack1("n")
      raise "CQL error from the test node: #{payload[6, size].force_encoding("UTF-8")}"
    end

    payload
  end

  def read(socket, count)
    data = +""
    while data.bytesize < count
      # The node answers a schema change once every node agrees on it: seconds, not minutes.
      raise "the test node did not answer in 60 s" unless socket.wait_readable(60)

      chunk = socket.read_nonblock(count - data.bytesize, exception: false)
      raise "the test node closed the connection" if chunk.nil?

      data << chunk unless chunk == :wait_readable
    end
    data
  end
end
