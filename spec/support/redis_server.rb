# frozen_string_literal: true

require "fileutils"
require "tmpdir"

# A redis-server of the spec's own on a loopback port, for the Sidekiq specs: started, waited
# for until it answers (polling, 20 s at most), and stopped with its directory.
class RedisServer
  attr_reader :dir, :port

  def initialize(port, prefix)
    @port = port
    @dir = Dir.mktmpdir(prefix)
    @pid = spawn("redis-server", "--port", port.to_s, "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", @dir, out: File::NULL, err: File::NULL)
  end

  def url
    "redis://127.0.0.1:#{@port}/0"
  end

  # A client, once the server answers.
  def client
    require "redis"
    redis = Redis.new(url: url)
    deadline = Time.now + 20
    begin
      redis.ping
    rescue Redis::CannotConnectError
      raise "redis-server did not answer on port #{@port}" if Time.now > deadline

      sleep 0.1
      retry
    end
    redis
  end

  def stop
    Process.kill("KILL", @pid)
    Process.wait(@pid)
    FileUtils.rm_rf(@dir)
  end
end
