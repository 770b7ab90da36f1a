# frozen_string_literal: true

# Where the CPU of the threads workload goes: 8 Ruby threads saving through the gem, bench/raw
# doing the same saves (8 callers on one current-thread runtime), and, for what Ruby itself
# pays to hand blocking I/O between 8 threads, 8 Ruby threads doing 120-byte round trips to
# an echo server in another process. For each, 3 rounds of 16,000 operations: the rate, the
# CPU of the calling process per operation, the CPU of the Cassandra node per operation, and
# how idle the machine was. Not run by bin/bench (it adds nothing to the table); run it with
#
#   ruby -I lib bench/threads_cpu.rb [gem|raw|echo ...]
#
# against the node bin/cassandra started (its pid is read from `bin/cassandra status`). For
# thread switches per operation, run it under `perf stat -e context-switches`.

require "etc"
require "json"
require "securerandom"
require "socket"
require "task"

ROOT = File.expand_path("..", __dir__)
PORT = Integer(ENV.fetch("TASK_CASSANDRA_PORT", "9042"))
RAW = File.join(ENV.fetch("CARGO_TARGET_DIR", File.join(ROOT, "target")), "release", "raw-bench")
COUNT = 16_000
THREADS = 8

class BenchTask
  include Task::Task

  data_attr_reader :n
  data_attr_reader :s
end

status = `#{ROOT}/bin/cassandra status`
NODE = status[/pid (\d+)/, 1]&.to_i or abort "no node: #{status.strip} (start one with bin/cassandra start)"

def cpu_seconds(pid)
  fields = File.read("/proc/#{pid}/stat").split(") ").last.split
  (fields[11].to_i + fields[12].to_i) / Float(Etc.sysconf(Etc::SC_CLK_TCK))
end

def busy_and_idle
  ticks = File.readlines("/proc/stat").first.split.drop(1).map(&:to_i)
  [ticks.sum, ticks[3] + ticks[4]]
end

def own_cpu
  Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
end

def children_cpu
  t = Process.times
  t.cutime + t.cstime
end

def echo_server
  server = TCPServer.new("127.0.0.1", 0)
  pid = fork do
    loop do
      client = server.accept
      Thread.new(client) do |c|
        loop { c.write(c.readpartial(4096)) }
      rescue EOFError, IOError
        c.close
      end
    end
  end
  port = server.addr[1]
  server.close
  [pid, port]
end

adapter = Task::DataInterface::CassandraAdapter.new(hosts: ["127.0.0.1"], port: PORT, keyspace: "task_bench")
adapter.create_schema
Task::DataInterface::Interface.adapter_builder = ->(*) { adapter }
echo_pid, echo_port = echo_server

(ARGV.empty? ? %w[gem raw echo] : ARGV).each do |mode|
  3.times do |round|
    list = "cpu-#{SecureRandom.hex(4)}"
    node0 = cpu_seconds(NODE)
    total0, idle0 = busy_and_idle
    own0 = own_cpu
    kids0 = children_cpu
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    case mode
    when "gem"
      Array.new(THREADS) do |t|
        Thread.new do
          (COUNT / THREADS).times do |i|
            BenchTask.new(task_list: list, id: "#{t}-#{i}", data: { n: i, s: "payload #{i}" }).save
          end
        end
      end.each(&:join)
    when "raw"
      out = IO.popen({ "RAW_RUNTIME" => "current" }, [RAW, "127.0.0.1:#{PORT}", "task_bench", "threads", COUNT.to_s],
                     &:read)
      raise "raw-bench failed" unless $?.success?
    when "echo"
      message = "x" * 120
      Array.new(THREADS) do
        Thread.new do
          s = TCPSocket.new("127.0.0.1", echo_port)
          s.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1)
          (COUNT / THREADS).times do
            s.write(message)
            got = +""
            got << s.readpartial(4096) while got.bytesize < message.bytesize
          end
          s.close
        end
      end.each(&:join)
    else
      abort "unknown mode #{mode} (gem, raw or echo)"
    end
    seconds = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    # bench/raw times its own saves (its start-up and clean-up are outside); its CPU is all of it.
    seconds = JSON.parse(out)["seconds"] if mode == "raw"
    client = mode == "raw" ? children_cpu - kids0 : own_cpu - own0
    node = mode == "echo" ? 0 : cpu_seconds(NODE) - node0
    total1, idle1 = busy_and_idle
    printf("%-5s round %d: %7.0f/s  calling process %5.1f us/op  node %5.1f us/op  machine idle %3.0f%%\n",
           mode, round, COUNT / seconds, client * 1e6 / COUNT, node * 1e6 / COUNT,
           100.0 * (idle1 - idle0) / (total1 - total0))
    adapter.delete_list(list) if mode == "gem"
  end
end
Process.kill("TERM", echo_pid)
Process.wait(echo_pid)
