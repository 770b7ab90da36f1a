# frozen_string_literal: true

require "logger"
require "socket"
require "stringio"

# Log lines: to an adapter's logger: or to Task.logger, delivered by the calling thread while
# it waits and when the call returns; nothing for calls that simply succeed.
RSpec.describe "logging" do
  let(:io) { StringIO.new }
  let(:logger) { Logger.new(io).tap { |l| l.formatter = ->(sev, _t, _p, msg) { "#{sev} #{msg}\n" } } }
  let(:list) { unique_list("logged") }

  # The gem's own lines; the driver's (which also reach an adapter's logger when Task.logger
  # is not set) are checked on their own.
  # The loggers these examples registered are forgotten, so later specs run without logging.
  after do
    Task::Logging.instance_variable_set(:@by_source, {}.freeze)
    Task::Logging.refresh
  end

  def lines
    all_lines.reject { |l| l.include?("task [driver]") }
  end

  def all_lines
    io.string.lines(chomp: true)
  end

  it "logs each retry with its attempt number while the call still waits, and the call that gave up" do
    adapter = Task::DataInterface::CassandraAdapter.new(hosts: ["127.0.0.1"], port: 1, connect_timeout: 0.5,
                                                        retry_deadline: 2, logger: logger)
    seen_while_waiting = Thread.new do
      sleep 0.05 until lines.size >= 2 || io.string.include?("gave up")
      lines.dup
    end
    expect { adapter.find(list, "1") }.to raise_error(Task::Error::NoHostAvailable)
    early = seen_while_waiting.value
    expect(early.first).to match(/\AWARN task \[tasks\.tasks@127\.0\.0\.1:1\]: finding task "1" of list "#{list}" failed \(attempt 1\): no Cassandra host reachable at 127\.0\.0\.1:1.*retrying in 50 ms\z/)
    expect(early.join).not_to include("gave up") # delivered before the call ended
    expect(lines.grep(/\AWARN .*failed \(attempt \d+\)/).size).to be >= 3
    expect(lines.last).to match(/\AERROR .*finding task "1" of list "#{list}" gave up after \d+ attempts in [\d.]+ s: no Cassandra host/)
    expect(adapter.logger).to be(logger)
  end

  it "logs sessions and schema changes at info, nothing for calls that simply succeed, and slow calls at warn" do
    keyspace = "task_spec_log#{SecureRandom.hex(3)}"
    adapter = cassandra_adapter(keyspace: keyspace, logger: logger)
    adapter.create_schema(claims: false)
    # The session may be an earlier example's (adapters with the same connection share one).
    expect(lines.grep(/\AINFO .*session opened to 127\.0\.0\.1:#{cassandra_options[:port]} \(1 nodes known\)/).size).to be <= 1
    expect(lines.grep(/\AINFO task \[#{keyspace}\.tasks@.*\]: schema: CREATE (KEYSPACE|TABLE) IF NOT EXISTS #{keyspace}/).size).to eq(2)
    io.truncate(0)
    io.rewind
    20.times { |i| adapter.store(FetchFile.build(task_list: list, id: i.to_s)) }
    20.times { |i| adapter.find(list, i.to_s) }
    adapter.all(list).to_a
    expect(lines).to eq([])

    slow = cassandra_adapter(keyspace: keyspace, slow_call: 0.000001, logger: logger)
    slow.find(list, "1")
    expect(lines).to include(match(/\AWARN .*slow call: finding task "1" of list "#{list}" took [\d.]+ s \(1 attempts\)/))
  end

  it "sends an adapter's lines to Task.logger when it has no logger of its own" do
    Task.logger = logger
    adapter = Task::DataInterface::CassandraAdapter.new(hosts: ["127.0.0.1"], port: 2, connect_timeout: 0.5,
                                                        retry_deadline: 0.3)
    expect { adapter.find(list, "1") }.to raise_error(Task::Error::NoHostAvailable)
    expect(lines.grep(/tasks\.tasks@127\.0\.0\.1:2/)).not_to be_empty
    expect(adapter.logger).to be_nil
  ensure
    Task.logger = nil
  end

  it "passes the driver's own events on at debug, its warnings at warn" do
    Task.logger = logger
    # A connection setting of its own, so that this adapter opens a session of its own.
    adapter = cassandra_adapter(connect_timeout: 4.75)
    adapter.find(list, "1")
    driver = all_lines.grep(/\A(DEBUG task \[driver\]: (DEBUG|INFO)|WARN task \[driver\]: WARN) scylla::/)
    expect(driver).not_to be_empty
    expect(driver.join("\n")).to include("127.0.0.1:#{cassandra_options[:port]}")
  ensure
    Task.logger = nil
  end

  it "refuses a logger that cannot log, naming it" do
    expect { Task::DataInterface::CassandraAdapter.new(logger: "log.txt") }
      .to raise_error(ArgumentError, /logger must respond to debug, info, warn and error \(a Logger\), got "log.txt"/)
    expect { Task.logger = :stdout }.to raise_error(ArgumentError, /got :stdout/)
    expect { Task::DataInterface::CassandraAdapter.new(loger: logger) }
      .to raise_error(ArgumentError, /unknown CassandraAdapter option :loger \(accepted: :logger, :hosts/)
  end

  describe "while the node does not answer", :faults do
    before(:all) { FaultNode.ensure_started! }

    # The node is paused (SIGSTOP) rather than killed, so that it is there again, unchanged,
    # for the specs that follow.
    it "logs the lost calls and the one that succeeded once the node answered again" do
      adapter = FaultNode.adapter(request_timeout: 1, connect_timeout: 1, retry_deadline: 60, logger: logger)
      adapter.store(FetchFile.build(task_list: list, id: "before"))
      pid = FaultNode.pid
      Process.kill("STOP", pid)
      waking = Thread.new { sleep 3 }
      begin
        resume = Thread.new do
          waking.join
          Process.kill("CONT", pid)
        end
        adapter.store(FetchFile.build(task_list: list, id: "across"))
      ensure
        waking.kill
        resume&.join
        Process.kill("CONT", pid)
      end
      expect(adapter.find(list, "across")).to be_a(FetchFile)
      failed = lines.grep(/\AWARN .*saving task "across" of list "#{list}" failed \(attempt \d+\)/)
      expect(failed).not_to be_empty
      expect(lines.grep(/\AINFO .*saving task "across" of list "#{list}" succeeded at attempt \d+/).size).to eq(1)
      shown = (lines.first(3) + ["..."] + lines.last(2)).join("\n      ")
      report "log lines across a 3 s pause of the node (#{lines.size} in all):\n      #{shown}"
    end
  end
end
