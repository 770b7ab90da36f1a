# frozen_string_literal: true

require "rbconfig"
require "timeout"
require "sqlite3"

# The SQLite store across processes: an exactly-once claim race, processes killed in the
# middle of a bulk call and of claims, interrupts of a call waiting on another process's
# lock, fork, and the files it refuses.
RSpec.describe Task::DataInterface::SqliteAdapter do
  let(:path) { SqliteFiles.fresh_path }
  let(:list) { unique_list("sqlite") }

  # Polls `cond` until true, failing after `limit` seconds.
  def wait_for(what, limit: 60)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + limit
    until yield
      raise "timed out waiting for #{what}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.005
    end
  end

  def lines_of(file)
    File.exist?(file) ? File.readlines(file, chomp: true) : []
  end

  def exit_ok(pid)
    _, status = Process.wait2(pid)
    status
  end

  # A child process that holds the file's write lock (BEGIN IMMEDIATE on its own connection)
  # until the returned writer is closed. Returns [pid, writer].
  def hold_write_lock(file)
    ready_r, ready_w = IO.pipe
    release_r, release_w = IO.pipe
    pid = fork do
      ready_r.close
      release_w.close
      db = SQLite3::Database.new(file)
      db.execute("BEGIN IMMEDIATE")
      ready_w.puts("held")
      ready_w.flush
      release_r.read # until the parent closes its end
      db.execute("ROLLBACK")
      db.close
      exit!(0)
    end
    ready_w.close
    release_r.close
    expect(ready_r.gets).to eq("held\n")
    ready_r.close
    [pid, release_w]
  end

  it "runs every task exactly once when 4 processes of 8 threads race with claim_each over 2,000 tasks" do
    adapter = sqlite_adapter(path: path, retry_deadline: 60)
    ids = (0...2000).map { |i| format("%04d", i) }
    adapter.store_many(ids.map { |id| FetchFile.build(task_list: list, id: id) })
    log = File.join(SqliteFiles::DIR, "race-#{SecureRandom.hex(4)}.log")
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    pids = 4.times.map do
      fork do
        worker = sqlite_adapter(path: path, retry_deadline: 60)
        Task::Task.interface = Task::DataInterface::Interface.new(adapter: worker)
        out = File.open(log, "a")
        8.times.map do
          Thread.new do
            Task::Task.claim_each(list, for: 120) { |task| out.syswrite("#{task.id} #{Process.pid}\n") }
          end
        end.each(&:join)
        exit!(0)
      rescue Exception => e # rubocop:disable Lint/RescueException
        warn "worker: #{e.class}: #{e.message}"
        exit!(1)
      end
    end
    statuses = pids.map { |pid| exit_ok(pid) }
    elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    expect(statuses).to all(be_success)
    executed = lines_of(log).map { |l| l.split.first }
    expect(executed.size).to eq(2000)
    expect(executed.tally.values.max).to eq(1)
    expect(executed.sort).to eq(ids)
    expect(adapter.count(list)).to eq(0)
    expect(adapter.integrity_check).to eq([])
    puts format("    claim race on SQLite: 2000 tasks by 4 processes x 8 threads in %.2f s (%.0f tasks/s), " \
                "executed %d, twice %d, by %d processes",
                elapsed, 2000 / elapsed, executed.size, executed.size - executed.uniq.size,
                lines_of(log).map { |l| l.split.last }.uniq.size)
  end

  it "keeps the file sound and every returned call's tasks after a process is SIGKILLed mid store_many" do
    adapter = sqlite_adapter(path: path)
    big = "#{list}-big"
    r, w = IO.pipe
    pid = fork do
      r.close
      child = sqlite_adapter(path: path)
      child.store_many((0...100).map { |i| FetchFile.build(task_list: list, id: i.to_s, n: i) })
      w.puts("returned")
      w.flush
      child.store_many((0...300_000).map { |i| FetchFile.build(task_list: big, id: format("%06d", i), n: i) })
      exit!(0)
    end
    w.close
    expect(r.gets).to eq("returned\n")
    wait_for("the big store_many's first chunk") { adapter.count(big).positive? }
    Process.kill(:KILL, pid)
    expect(exit_ok(pid).termsig).to eq(Signal.list["KILL"])
    expect(adapter.integrity_check).to eq([])
    expect(adapter.count(list)).to eq(100)
    expect(adapter.find(list, "99").data[:n]).to eq(99)
    stored = adapter.count(big)
    expect(stored).to be < 300_000
    expect(stored % 1000).to eq(0) # whole transactions only
    use_adapter(adapter)
    expect(Task::Task.all(big).count).to eq(stored)
    puts "    SIGKILL mid store_many of 300,000: #{stored} stored (whole chunks), 100/100 returned tasks kept, " \
         "integrity_check ok"
  end

  it "keeps the file sound and every returned claim and completion after a process is SIGKILLed mid claims" do
    adapter = sqlite_adapter(path: path)
    use_adapter(adapter)
    ids = (0...2000).map { |i| format("%04d", i) }
    adapter.store_many(ids.map { |id| FetchFile.build(task_list: list, id: id) })
    log = File.join(SqliteFiles::DIR, "claims-#{SecureRandom.hex(4)}.log")
    pid = fork do
      child = sqlite_adapter(path: path)
      Task::Task.interface = Task::DataInterface::Interface.new(adapter: child)
      out = File.open(log, "a")
      4.times.map do |t|
        Thread.new do
          ids.each_slice(4).map { |s| s[t] }.each do |id|
            task = Task::Task.find(list, id)
            next unless task.claim(for: 600, owner: "child")

            out.syswrite("claimed #{id}\n")
            next unless id.to_i.even?

            task.complete
            out.syswrite("completed #{id}\n")
          end
        end
      end.each(&:join)
      exit!(0)
    end
    wait_for("claims in the child") { lines_of(log).size >= 300 }
    Process.kill(:KILL, pid)
    expect(exit_ok(pid).termsig).to eq(Signal.list["KILL"])
    expect(adapter.integrity_check).to eq([])
    lines = lines_of(log)
    claimed = lines.grep(/\Aclaimed /).map { |l| l.split.last }
    completed = lines.grep(/\Acompleted /).map { |l| l.split.last }
    expect(claimed.size).to be < 2000
    completed.each { |id| expect(adapter.find(list, id)).to be_nil }
    (claimed - completed).each do |id|
      # A completion that was running when the process died may or may not have been applied
      # (it had not returned); a claim that returned is kept.
      next if id.to_i.even? && adapter.find(list, id).nil? && adapter.claim_info(list, id).nil?

      expect(adapter.claim_info(list, id)).to include(owner: "child", attempts: 1)
    end
    expect(claimed.count { |id| id.to_i.odd? }).to be_positive
    puts "    SIGKILL mid claims: #{claimed.size} claims and #{completed.size} completions returned, all kept; " \
         "integrity_check ok"
  end

  describe "a call waiting on another process's write lock" do
    it "ends with Task::Error::Timeout after retry_deadline when nothing interrupts it" do
      adapter = sqlite_adapter(path: path, retry_deadline: 0.5)
      holder, release = hold_write_lock(path)
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      expect { adapter.store(FetchFile.build(task_list: list, id: "1")) }
        .to raise_error(Task::Error::Timeout, /#{Regexp.escape(path)}.*retry_deadline/)
      expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - started).to be >= 0.5
      release.close
      expect(exit_ok(holder)).to be_success
      expect(adapter.find(list, "1")).to be_nil
      adapter.store(FetchFile.build(task_list: list, id: "1"))
      expect(adapter.find(list, "1")).to be_a(FetchFile)
    end

    it "is ended within a second by Thread#raise and by Timeout, with nothing applied" do
      adapter = sqlite_adapter(path: path, retry_deadline: 60)
      probe = sqlite_adapter(path: path, retry_deadline: 0.05)
      holder, release = hold_write_lock(path)
      delays = []
      caller = Thread.new do
        adapter.store(FetchFile.build(task_list: list, id: "raised"))
        :returned
      rescue Interrupt
        :interrupted
      end
      # The lock is still held: the call is waiting for it.
      expect { probe.store(FetchFile.build(task_list: list, id: "p")) }.to raise_error(Task::Error::Timeout)
      raised = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      caller.raise(Interrupt)
      expect(caller.join(20)&.value).to eq(:interrupted)
      delays << Process.clock_gettime(Process::CLOCK_MONOTONIC) - raised
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      expect { Timeout.timeout(0.2) { adapter.store(FetchFile.build(task_list: list, id: "timed")) } }
        .to raise_error(Timeout::Error)
      delays << Process.clock_gettime(Process::CLOCK_MONOTONIC) - started - 0.2
      # Still held: the calls ended by the interrupt, not by the lock's release.
      expect { probe.store(FetchFile.build(task_list: list, id: "p")) }.to raise_error(Task::Error::Timeout)
      release.close
      expect(exit_ok(holder)).to be_success
      expect(delays).to all(be < 1.0)
      expect(adapter.find(list, "raised")).to be_nil
      expect(adapter.find(list, "timed")).to be_nil
      puts format("    interrupt of a lock wait: Thread#raise %.0f ms, Timeout %.0f ms after its deadline",
                  delays[0] * 1000, delays[1] * 1000)
    end

    it "keeps waiting when the interrupt was meant for another thread's call" do
      adapter = sqlite_adapter(path: path, retry_deadline: 60)
      holder, release = hold_write_lock(path)
      calls = %w[a b].to_h do |id|
        [id, Thread.new do
          adapter.store(FetchFile.build(task_list: list, id: id))
          :returned
        rescue Interrupt
          :interrupted
        end]
      end
      wait_for("both calls to wait") { calls.values.all? { |t| t.backtrace.to_a.any? { |f| f.include?("store") } } }
      calls["a"].raise(Interrupt)
      expect(calls["a"].join(20)&.value).to eq(:interrupted)
      expect(calls["b"]).to be_alive # made again after a's interrupt ended it too
      release.close
      expect(exit_ok(holder)).to be_success
      expect(calls["b"].join(20)&.value).to eq(:returned)
      expect(adapter.find(list, "b")).to be_a(FetchFile)
      expect(adapter.find(list, "a")).to be_nil
    end

    it "is ended within a second by SIGINT in a subprocess" do
      sqlite_adapter(path: path) # made, with its schema
      holder, release = hold_write_lock(path)
      script = <<~RUBY
        require "task"
        a = Task::DataInterface::SqliteAdapter.new(path: #{path.dump}, retry_deadline: 60)
        main = Thread.current
        Thread.new do
          # Says so once the main thread is inside the call (waiting for the lock).
          sleep 0.001 until main.backtrace.to_a.any? { |f| f.include?("store_row") }
          $stdout.puts "waiting"; $stdout.flush
          sleep
        end
        begin
          a.store_row(task_list: "l", id: "1", type: "FetchFile", data: "{}")
          puts "returned"
        rescue Interrupt
          puts "interrupted"
        end
      RUBY
      io = IO.popen([RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-e", script], "r")
      expect(io.gets).to eq("waiting\n")
      sent = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      Process.kill(:INT, io.pid)
      expect(io.gets).to eq("interrupted\n")
      delay = Process.clock_gettime(Process::CLOCK_MONOTONIC) - sent
      io.close
      release.close
      expect(exit_ok(holder)).to be_success
      expect(delay).to be < 1.0
      puts format("    SIGINT of a subprocess waiting on a lock: ended in %.0f ms", delay * 1000)
    end
  end

  it "lets a forked child use the adapter, and the parent's keeps working" do
    adapter = sqlite_adapter(path: path)
    adapter.store(FetchFile.build(task_list: list, id: "parent"))
    r, w = IO.pipe
    pid = fork do
      r.close
      # The parent closed its idle connections just before the fork: none was inherited.
      inherited = Dir.children("/proc/self/fd").count do |fd|
        File.readlink("/proc/self/fd/#{fd}").start_with?(path)
      rescue SystemCallError
        false
      end
      w.puts(inherited)
      w.close
      ok = adapter.find(list, "parent").is_a?(FetchFile)
      adapter.store(FetchFile.build(task_list: list, id: "child"))
      exit!(ok && adapter.count(list) == 2 ? 0 : 1)
    end
    w.close
    expect(r.read).to eq("0\n")
    expect(exit_ok(pid)).to be_success
    expect(adapter.find(list, "child")).to be_a(FetchFile)
    adapter.store(FetchFile.build(task_list: list, id: "after"))
    expect(adapter.count(list)).to eq(3)
    expect(adapter.integrity_check).to eq([])
  end

  describe "what new refuses" do
    it "refuses a file that is not a task database, leaving it byte-identical" do
      text = File.join(SqliteFiles::DIR, "notes-#{SecureRandom.hex(4)}.txt")
      File.write(text, "not a database\n" * 100)
      other = File.join(SqliteFiles::DIR, "other-#{SecureRandom.hex(4)}.db")
      SQLite3::Database.new(other).tap { |db| db.execute("CREATE TABLE people (name TEXT)") }.close
      [text, other].each do |file|
        before = File.binread(file)
        expect { described_class.new(path: file) }.to raise_error(ArgumentError, /#{Regexp.escape(file)} is not a task database/)
        expect(File.binread(file)).to eq(before)
      end
    end

    it "refuses a task database of a newer schema version, leaving it byte-identical" do
      sqlite_adapter(path: path).store(FetchFile.build(task_list: list, id: "1"))
      db = SQLite3::Database.new(path)
      db.execute("PRAGMA user_version = 99")
      db.close
      before = File.binread(path)
      expect { described_class.new(path: path) }.to raise_error(ArgumentError, /schema version 99, newer/)
      expect(File.binread(path)).to eq(before)
    end

    it "refuses an unknown option and a missing path, naming them" do
      expect { described_class.new(path: path, pathh: 1) }.to raise_error(ArgumentError, /unknown SqliteAdapter option :pathh/)
      expect { described_class.new(retry_deadline: 1) }.to raise_error(ArgumentError, /path: is required/)
      expect { described_class.new(path: path, synchronous: :off) }.to raise_error(ArgumentError, /synchronous/)
      expect(File.exist?(path)).to be(false)
    end
  end

  it "shows its options and describes its file" do
    adapter = sqlite_adapter(path: path, retry_deadline: 2, synchronous: :normal)
    expect(adapter.options).to include(path: path, retry_deadline: 2.0, synchronous: :normal, max_attempts: 25)
    expect(adapter.describe).to include(path: path, journal_mode: "wal", synchronous: "NORMAL", schema_version: 1)
    expect(adapter.inspect).to include("path=#{path}")
  end
end
