# frozen_string_literal: true

require "timeout"

# The extension inside Ruby's process models: calls that wait on the network release the GVL
# and can be interrupted; forked children (Resque) and threads (Sidekiq) work.
RSpec.describe "the extension in Ruby's process models", :faults do
  before(:all) { FaultNode.ensure_started! }

  let(:list) { unique_list("proc") }

  def rss_kb
    File.read("/proc/self/status")[/^VmRSS:\s+(\d+)/, 1].to_i
  end

  # Runs the block while the fault node is paused, so any call to it blocks.
  def while_paused
    FaultNode.ensure_started!
    FaultNode.adapter.find(list, "warm-up") # connect and prepare before the pause
    pid = FaultNode.pid
    Process.kill("STOP", pid)
    begin
      yield
    ensure
      Process.kill("CONT", pid)
    end
  end

  let(:blocking) { FaultNode.adapter(request_timeout: 5, retry_deadline: 5) }

  describe "the GVL" do
    it "is released while a call waits on the node: another thread keeps running" do
      blocking.find(list, "warm-up")
      progress = 0
      while_paused do
        caller_thread = Thread.new do
          blocking.find(list, "x")
        rescue Task::Error
          :failed
        end
        sleep 0.3 # the call is now blocked on the paused node
        counter = Thread.new do
          deadline = now + 1
          progress += 1 while now < deadline
        end
        counter.join
        expect(caller_thread).to be_alive
        caller_thread.kill.join
      end
      # With the GVL held by the blocked call, the counter could not have run at all.
      expect(progress).to be > 10_000
    end
  end

  describe "interrupts" do
    it "lets Timeout.timeout, Thread#kill and Thread#raise stop a blocked call" do
      blocking.find(list, "warm-up")
      while_paused do
        started = now
        expect { Timeout.timeout(0.3) { blocking.find(list, "x") } }.to raise_error(Timeout::Error)
        expect(now - started).to be < 3 # interrupted, not the 5 s request timeout

        killed = Thread.new { blocking.find(list, "x") }
        sleep 0.2
        killed.kill
        expect(killed.join(3)).to equal(killed)

        raised = Thread.new do
          Thread.current.report_on_exception = false
          blocking.store(FetchFile.new(task_list: list, id: "r"))
        end
        sleep 0.2
        raised.raise(ArgumentError, "stop now")
        expect { raised.join(3) }.to raise_error(ArgumentError, "stop now")
      end
    end

    it "stops a scan waiting on the page it read ahead, and the next scan is whole" do
      paged = FaultNode.adapter(page_size: 50, request_timeout: 5, retry_deadline: 5)
      paged.store_many((0...200).map { |i| FetchFile.build(task_list: list, id: format("s%03d", i)) })
      use_adapter(paged)
      seen = 0
      pid = FaultNode.pid
      begin
        # Paused from inside the block: the page after the next one is asked for after the
        # pause, so the scan must block waiting for it until the timeout stops it.
        expect do
          Timeout.timeout(1) do
            Task::Task.all(list).each { |_t| Process.kill("STOP", pid) if (seen += 1) == 1 }
          end
        end.to raise_error(Timeout::Error)
      ensure
        Process.kill("CONT", pid)
      end
      expect(seen).to be_between(50, 150)
      expect(Task::Task.all(list).map(&:id).to_a).to eq((0...200).map { |i| format("s%03d", i) })
    end

    it "stops a blocked call on Ctrl-C (SIGINT) in a process of its own" do
      script = <<~RUBY
        require "task"
        a = Task::DataInterface::CassandraAdapter.new(port: #{FaultNode::PORT}, keyspace: "task_faults",
              username: "cassandra", password: "cassandra", request_timeout: 20, retry_deadline: 20)
        a.find("l", "warm-up")
        $stdout.puts "ready"
        $stdout.flush
        $stdin.gets
        begin
          a.find("l", "x")
          puts "returned"
        rescue Interrupt
          puts "interrupted"
        end
      RUBY
      lib = File.expand_path("../lib", __dir__)
      IO.popen([RbConfig.ruby, "-I", lib, "-e", script], "r+", err: %i[child out]) do |io|
        expect(io.gets).to eq("ready\n")
        while_paused do
          io.puts "go"
          io.flush
          sleep 0.5 # the child is now blocked in find
          Process.kill("INT", io.pid)
          expect(io.read).to include("interrupted")
        end
      end
    end

    it "releases everything an interrupted call held: 200 in a row, then calls work and memory is flat" do
      blocking.find(list, "warm-up")
      task = FetchFile.new(task_list: list, id: "after")
      # A first round warms up whatever grows once (allocator arenas, timer wheels).
      while_paused { 20.times { Timeout.timeout(0.02) { blocking.find(list, "x") } rescue Timeout::Error } }
      before = rss_kb
      interrupted = 0
      while_paused do
        200.times do
          Timeout.timeout(0.02) { blocking.find(list, "x") }
        rescue Timeout::Error
          interrupted += 1
        end
      end
      expect(interrupted).to eq(200)
      blocking.store(task)
      expect(blocking.find(list, "after")).to be_a(FetchFile)
      growth_mb = (rss_kb - before) / 1024.0
      expect(growth_mb).to be < 20
      RSpec.configuration.reporter.message(format("    200 interrupted calls: RSS %+.1f MB", growth_mb))
    end
  end

  describe "fork" do
    def wait_child(pid, limit = 30)
      deadline = now + limit
      loop do
        done, status = Process.waitpid2(pid, Process::WNOHANG)
        return status if done
        if now > deadline
          Process.kill("KILL", pid)
          Process.wait(pid)
          raise "child #{pid} took over #{limit} s"
        end
        sleep 0.02
      end
    end

    it "works in 20 forked children in a row after the parent used it, and in the parent after" do
      adapter = cassandra_adapter
      use_adapter(adapter)
      FetchFile.create(task_list: list, id: "parent")
      statuses = 20.times.map do |i|
        pid = fork do
          task = FetchFile.create(task_list: list, id: "child-#{i}", n: i)
          ok = Task::Task.find(list, "child-#{i}")&.data == { n: i }
          task.complete
          ok &&= Task::Task.find(list, "child-#{i}").nil?
          exit!(ok ? 0 : 1)
        end
        wait_child(pid)
      end
      expect(statuses.map(&:exitstatus)).to all(eq(0))
      expect(Task::Task.find(list, "parent")).to be_a(FetchFile)
      FetchFile.create(task_list: list, id: "parent-after")
      expect(Task::Task.all(list).map(&:id).to_a).to eq(%w[parent parent-after])
    end

    it "works when the process forks before first use, and a child that never uses it harms nothing" do
      options = cassandra_options.merge(keyspace: "task_spec")
      script = <<~RUBY
        require "task"
        class Job; include Task::Task; end
        Task::DataInterface::Interface.adapter_builder = ->(_) { Task::DataInterface::CassandraAdapter.new(**#{options.inspect}) }
        list = #{list.dump}
        # Preloaded, forked before any use (Puma, Unicorn): the child uses it first.
        pid = fork { Job.create(task_list: list, id: "child"); exit!(Task::Task.find(list, "child") ? 0 : 1) }
        Process.wait(pid)
        raise "child failed" unless $?.success?
        # A child that exits without touching the gem.
        pid = fork { exit!(0) }
        Process.wait(pid)
        Job.create(task_list: list, id: "parent")
        puts Task::Task.all(list).map(&:id).to_a.join(",")
      RUBY
      lib = File.expand_path("../lib", __dir__)
      out = nil
      Timeout.timeout(60) { out = IO.popen([RbConfig.ruby, "-I", lib, "-e", script], err: %i[child out], &:read) }
      expect($?.success?).to be(true), out
      expect(out.strip).to eq("child,parent")
    end
  end

  describe "memory" do
    it "does not grow over 100,000 save/find/complete cycles" do
      use_adapter(Task::DataInterface::MemoryAdapter.new)
      cycle = lambda do |i|
        task = FetchFile.new(task_list: list, id: i.to_s, data: { "n" => i, "s" => "payload #{i}" })
        task.save
        Task::Task.find(list, i.to_s)
        task.complete
      end
      10_000.times(&cycle)
      GC.start
      before = rss_kb
      100_000.times(&cycle)
      GC.start
      growth_mb = (rss_kb - before) / 1024.0
      expect(growth_mb).to be < 20
      RSpec.configuration.reporter.message(format("    100,000 save/find/complete cycles (memory store): RSS %+.1f MB", growth_mb))
    end
  end
end
