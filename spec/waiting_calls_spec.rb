# frozen_string_literal: true

require "socket"
require "timeout"

# What a waiting call promises whatever happens around it: a wake-up (a trapped signal whose
# handler returns, Thread#wakeup) resumes the same work and never redoes what is done; every
# deadline counts from when the call began; Ctrl-C, SIGTERM and trapped signals reach it
# within a second whatever threads came and went; a fork never lets a child touch the
# parent's connections; a session nobody can use any more is closed.
RSpec.describe "waiting calls" do
  let(:list) { unique_list("wait") }
  let(:lib) { File.expand_path("../lib", __dir__) }

  # Runs the block while `signal` is sent to this process every `every` seconds (at most
  # `limit` seconds, so that a call that never finishes cannot hang the suite) with a trap
  # that counts them; returns the count.
  def under_signals(signal: "USR2", every: 0.3, limit: 40)
    count = 0
    old = trap(signal) { count += 1 }
    sending = true
    sender = Thread.new do
      stop = now + limit
      while sending && now < stop
        sleep every
        Process.kill(signal, Process.pid) if sending
      end
    end
    yield
    count
  ensure
    sending = false
    sender&.join
    trap(signal, old || "DEFAULT")
  end

  describe "a wake-up is not a restart" do
    let(:adapter) { cassandra_adapter }

    # Another worker completes every task as soon as it sees it stored, and notes any task it
    # sees again after completing it: a task written twice.
    def completing_worker(adapter)
      completed = {}
      seen_again = []
      running = true
      worker = Thread.new do
        while running
          adapter.rows(list).each do |row|
            seen_again << row[:id] if completed[row[:id]]
            adapter.delete(list, row[:id])
            completed[row[:id]] = true
          end
        end
      end
      yield
      running = false
      worker.join
      # Whatever was written after the worker's last look.
      adapter.rows(list).each { |row| seen_again << row[:id] if completed[row[:id]] }
      [completed.size, seen_again.uniq]
    end

    it "resumes store_many across trapped signals: it finishes, and no task a worker completed meanwhile is written again" do
      tasks = (1..5000).map { |i| FetchFile.build(task_list: list, id: format("%05d", i), n: i) }
      signals = elapsed = nil
      completed, rewritten = completing_worker(adapter) do
        started = now
        # One request per task, one at a time: a call long enough for many signals (batched,
        # it is over in a few requests; the wait it resumes is the same either way).
        signals = under_signals(every: 0.05) { adapter.store_many(tasks, concurrency: 1, batched: false) }
        elapsed = now - started
      end
      expect(signals).to be >= 3
      expect(elapsed).to be < 35, "store_many did not finish while the signals went on"
      expect(rewritten).to eq([]), "#{rewritten.size} completed tasks were written again"
      expect(completed).to be > 0
      report format("store_many(5000, concurrency: 1) under a trapped signal every 0.05 s: %.1f s, %d signals, %d completed tasks written again",
                    elapsed, signals, rewritten.size)
    end

    it "resumes delete_many across trapped signals: a task stored again after its delete stays" do
      tasks = (1..2000).map { |i| FetchFile.build(task_list: list, id: format("%05d", i)) }
      adapter.store_many(tasks)
      restored = []
      restoring = true
      # Another job stores a task again once it is gone: a redone delete would remove it.
      restorer = Thread.new do
        while restoring
          pending = tasks.map(&:id) - restored
          present = adapter.rows(list).map { |r| r[:id] }.to_a
          (pending - present).each do |id|
            adapter.store(FetchFile.new(task_list: list, id: id, data: { again: true }))
            restored << id
          end
        end
      end
      signals = under_signals(every: 0.05) { adapter.delete_many(tasks, concurrency: 1, batched: false) }
      restoring = false
      restorer.join
      present = adapter.rows(list).map { |r| r[:id] }.to_a
      expect(signals).to be >= 3
      expect(restored).not_to be_empty
      expect(restored - present).to eq([]), "tasks stored again after their delete were deleted again"
      report "delete_many(2000, concurrency: 1) under a trapped signal every 0.05 s: #{signals} signals, " \
             "#{restored.size} tasks stored again meanwhile, #{(restored - present).size} of them deleted again"
    end

    it "resumes a bulk call woken by Thread#wakeup" do
      tasks = (1..4000).map { |i| FetchFile.build(task_list: list, id: format("%05d", i)) }
      main = Thread.current
      waking = true
      wakes = 0
      waker = Thread.new do
        stop = now + 40
        while waking && now < stop
          sleep 0.05
          (main.wakeup; wakes += 1) if waking
        end
      end
      elapsed = nil
      _, rewritten = completing_worker(adapter) do
        started = now
        adapter.store_many(tasks, concurrency: 1, batched: false)
        elapsed = now - started
        waking = false
        waker.join
      end
      expect(wakes).to be >= 3
      expect(elapsed).to be < 35, "store_many did not finish while the wake-ups went on"
      expect(rewritten).to eq([]), "#{rewritten.size} completed tasks were written again"
      report format("store_many(4000, concurrency: 1) woken every 0.05 s: %.1f s, %d wake-ups, %d completed tasks written again",
                    elapsed, wakes, rewritten.size)
    end
  end

  describe "deadlines are absolute" do
    it "ends a find on a node that does not answer within its deadline, whatever signals arrive" do
      black_hole do |port|
        adapter = Task::DataInterface::CassandraAdapter.new(port: port, request_timeout: 2, connect_timeout: 1,
                                                            retry_deadline: 3)
        started = now
        error = nil
        signals = under_signals(every: 1, limit: 30) do
          adapter.find(list, "x")
        rescue Task::Error => e
          error = e
        end
        elapsed = now - started
        expect(error).to be_a(Task::Error::NoHostAvailable).or be_a(Task::Error::Timeout)
        expect(signals).to be >= 2
        # retry_deadline (3) + one attempt (connect_timeout * 2 + request_timeout), and slack.
        expect(elapsed).to be < 12
        report format("find on a silent node, retry_deadline 3, a trapped signal every second: raised after %.1f s", elapsed)
      end
    end
  end

  describe "Ctrl-C, SIGTERM and trapped signals" do
    # A process of its own that waits in a call on a silent node (60 s alone) after a thread
    # it started has ended, and reports how it left the call.
    # deadline: the call's own end (retry_deadline), for a scenario whose call goes on to it.
    def probe(port, scenario, deadline: 60)
      script = <<~RUBY
        require "task"
        a = Task::DataInterface::CassandraAdapter.new(port: #{port}, connect_timeout: #{deadline / 2.0},
                                                      request_timeout: #{deadline / 2.0}, retry_deadline: #{deadline})
        def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        scenario = #{scenario.dump}
        handled = nil
        trap("USR1") { handled = now } if scenario == "trap"
        Thread.new { sleep 0.3 } # exists as the call begins, gone before any signal
        if scenario == "self"
          # A thread signals its own process, then ends.
          Thread.new { sleep 1.5; $stdout.puts "sent \#{now}"; $stdout.flush; Process.kill("INT", Process.pid) }
        end
        $stdout.puts "waiting"
        $stdout.flush
        begin
          a.find("l", "x")
          puts "returned \#{now}"
        rescue Interrupt
          puts "Interrupt \#{now}"
        rescue SignalException => e
          puts "\#{e.signm} \#{now}"
        rescue Task::Error => e
          puts "\#{e.class} \#{now} handled \#{handled}"
        end
      RUBY
      IO.popen([RbConfig.ruby, "-I", lib, "-e", script], "r", err: %i[child out]) do |io|
        expect(io.gets).to eq("waiting\n")
        yield io
        Timeout.timeout(90) { io.read }
      end
    end

    it "raises Interrupt on SIGINT within a second after the other threads ended" do
      black_hole do |port|
        sent = nil
        out = probe(port, "int") do |io|
          sleep 1.5
          sent = now
          Process.kill("INT", io.pid)
        end
        expect(out).to match(/\AInterrupt (\S+)$/)
        delay = Float(out[/\AInterrupt (\S+)/, 1]) - sent
        expect(delay).to be < 1
        report format("SIGINT after the other thread ended: Interrupt raised %.2f s later", delay)
      end
    end

    it "ends the call on SIGTERM (Sidekiq's shutdown) within a second" do
      black_hole do |port|
        sent = nil
        out = probe(port, "term") do |io|
          sleep 1.5
          sent = now
          Process.kill("TERM", io.pid)
        end
        expect(out).to match(/\ASIGTERM (\S+)$/)
        delay = Float(out[/\ASIGTERM (\S+)/, 1]) - sent
        expect(delay).to be < 1
        report format("SIGTERM: SignalException raised %.2f s later", delay)
      end
    end

    it "raises Interrupt when a thread signals its own process just before it ends" do
      black_hole do |port|
        out = probe(port, "self") { |_io| nil }
        sent = Float(out[/^sent (\S+)$/, 1])
        expect(out).to match(/^Interrupt (\S+)$/)
        delay = Float(out[/^Interrupt (\S+)$/, 1]) - sent
        expect(delay).to be < 1
        report format("SIGINT from a thread that then ended: Interrupt raised %.2f s later", delay)
      end
    end

    it "runs a trap handler within a second, and the call goes on to its own end" do
      black_hole do |port|
        sent = nil
        # A deadline of its own: the call goes on to it after the handler ran.
        out = probe(port, "trap", deadline: 8) do |io|
          sleep 1.5
          sent = now
          Process.kill("USR1", io.pid)
        end
        expect(out).to match(/\ATask::Error::\w+ \S+ handled (\S+)$/)
        delay = Float(out[/handled (\S+)$/, 1]) - sent
        expect(delay).to be < 1
        report format("trapped SIGUSR1: handler ran %.2f s later, the call then ended with its own error", delay)
      end
    end
  end

  describe "fork inside a scan" do
    [:memory, :cassandra].each do |store|
      it "lets the child go on with the scan on its own connection (#{store}); the parent's scan and calls are unaffected" do
        adapter = store == :memory ? Task::DataInterface::MemoryAdapter.new(page_size: 500) : cassandra_adapter(page_size: 500)
        ids = (1..6000).map { |i| format("%05d", i) }
        adapter.store_many(ids.map { |id| FetchFile.build(task_list: list, id: id) })
        adapter.store(FetchFile.new(task_list: "#{list}-other", id: "probe", data: { who: "parent" }))
        reader, writer = IO.pipe
        seen = []
        child = nil
        in_child = false
        found = []
        begin
          adapter.all(list).each do |task|
            seen << [task.id, task.task_list]
            # The first task of page two: the page after it has just been requested and
            # its answer is still on the way.
            if seen.size == 501 && child.nil? && !in_child
              child = fork
              if child.nil?
                in_child = true
                reader.close
              end
            end
            # The parent keeps using the same adapter while the child scans.
            found << adapter.find("#{list}-other", "probe")&.data if child && (seen.size % 50).zero?
          end
          if in_child
            probe = adapter.find("#{list}-other", "probe")&.data
            writer.write(Marshal.dump([:ok, seen, probe]))
          end
        rescue Exception => e # rubocop:disable Lint/RescueException
          raise unless in_child

          writer.write(Marshal.dump([:error, "#{e.class}: #{e.message}", seen.size]))
        ensure
          if in_child
            writer.close
            exit!(0)
          end
        end
        writer.close
        result = Timeout.timeout(60) { Marshal.load(reader.read) }
        Process.wait(child)
        expected = ids.map { |id| [id, list] }
        expect(seen).to eq(expected)
        expect(found).to all(eq({ who: "parent" }))
        expect(result[0]).to eq(:ok), result.inspect
        expect(result[1]).to eq(expected)
        expect(result[2]).to eq({ who: "parent" })
      end
    end
  end

  describe "sessions" do
    def fds
      Dir.children("/proc/self/fd").size
    end

    it "closes the session of a connection setting once no adapter can use it" do
      keep = cassandra_adapter
      keep.find(list, "warm-up")
      GC.start
      sessions_before = Task::DataInterface::CassandraAdapter.open_sessions
      fds_before = fds
      # 100 adapters, each with settings of its own (so a session of its own), used once.
      100.times do |i|
        cassandra_adapter(connect_timeout: 5 + (i + 1) / 1000.0).find(list, "x")
      end
      opened = Task::DataInterface::CassandraAdapter.open_sessions - sessions_before
      fds_open = fds - fds_before
      GC.start
      # Closed sockets go once the I/O runtime runs again.
      deadline = now + 10
      until (Task::DataInterface::CassandraAdapter.open_sessions - sessions_before) <= 2 && fds - fds_before <= 6 || now > deadline
        keep.find(list, "x")
        sleep 0.05
      end
      left = Task::DataInterface::CassandraAdapter.open_sessions - sessions_before
      expect(opened).to eq(100)
      expect(left).to be <= 2
      expect(fds - fds_before).to be <= 6
      expect(keep.find(list, "x")).to be_nil
      report "100 adapters with distinct settings: #{opened} sessions and #{fds_open} descriptors while held; " \
             "#{left} sessions and #{fds - fds_before} descriptors more than before once collected"
    end
  end
end
