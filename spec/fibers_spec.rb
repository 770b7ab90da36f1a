# frozen_string_literal: true

require "async"
require "socket"
require "timeout"

# Calls under a Fiber scheduler (Async): a call made from a non-blocking fiber waits through
# the scheduler, so the reactor runs other fibers meanwhile; the scheduler's stops and timeouts
# cancel it as an interrupt does; the adapter works for the next call.
RSpec.describe "calls under a Fiber scheduler" do
  let(:list) { unique_list("fibers") }
  let(:adapter) { cassandra_adapter }

  def silent_adapter(port)
    Task::DataInterface::CassandraAdapter.new(port: port, connect_timeout: 1, request_timeout: 2,
                                              retry_deadline: 2)
  end

  # Polls (never sleeps a guessed time) until the block is true or `limit` seconds passed.
  def within(limit)
    stop = now + limit
    sleep 0.005 until yield || now > stop
    yield
  end

  def tasks(n, prefix = "t")
    (1..n).map { |i| FetchFile.build(task_list: list, id: format("#{prefix}%05d", i), n: i) }
  end

  it "runs 50 saves in 50 fibers at the same time, each stored" do
    adapter.find(list, "warm-up")
    Async { adapter.find(list, "warm-up") }
    # Five rounds of each, alternating; the medians are reported (one round is noisy here).
    one_by_one = []
    overlapped = []
    most = 0
    5.times do |round|
      sequential = tasks(50, "s#{round}-")
      started = now
      sequential.each { |t| adapter.store(t) }
      one_by_one << (now - started)

      inflight = 0
      concurrent = tasks(50, "c#{round}-")
      started = now
      Async do |task|
        concurrent.map do |t|
          task.async do
            inflight += 1
            most = [most, inflight].max
            adapter.store(t)
            inflight -= 1
          end
        end.each(&:wait)
      end
      overlapped << (now - started)
      expect(concurrent.map { |t| adapter.find(list, t.id)&.id }).to eq(concurrent.map(&:id))
    end
    expect(most).to be > 1
    median = ->(xs) { xs.sort[xs.size / 2] }
    report format("50 saves, medians of 5 rounds: one after another %.3f s; in 50 fibers %.3f s (%d in flight at most)",
                  median.(one_by_one), median.(overlapped), most)
  end

  it "overlaps claims, counts and scans from fibers sharing one adapter" do
    adapter.store_many(tasks(40))
    inflight = 0
    most = 0
    outcomes = {}
    counted = nil
    scanned = nil
    Async do |task|
      # Every kind of wait at once: claims (a transaction each), a count, a scan.
      calls = tasks(40).map do |t|
        task.async do
          inflight += 1
          most = [most, inflight].max
          outcomes[t.id] = adapter.claim(list, t.id, 30, "fiber-#{t.id}").first
          inflight -= 1
        end
      end
      calls << task.async { counted = adapter.count(list) }
      calls << task.async { scanned = adapter.all(list).map(&:id).to_a }
      calls.each(&:wait)
    end
    expect(most).to be > 1
    expect(outcomes.values.uniq).to eq([:won])
    expect(outcomes.size).to eq(40)
    expect(counted).to eq(40)
    expect(scanned).to eq(tasks(40).map(&:id))
  end

  it "runs SQLite calls from fibers on the calling thread, one at a time, each stored" do
    lite = sqlite_adapter
    inflight = 0
    most = 0
    Async do |task|
      tasks(80).each_slice(10).map do |slice|
        task.async do
          slice.each do |t|
            inflight += 1
            most = [most, inflight].max
            lite.store(t)
            inflight -= 1
          end
        end
      end.each(&:wait)
    end
    # A SQLite call does not wait through the scheduler: it holds the thread for its length.
    expect(most).to eq(1)
    expect(lite.count(list)).to eq(80)
  end

  it "shares one adapter between fibers under a scheduler and plain threads at the same time" do
    threads = 2.times.map do |t|
      Thread.new { 200.times { |i| adapter.store(FetchFile.build(task_list: list, id: "t#{t}-#{i}", n: i)) } }
    end
    Async do |task|
      8.times.map do |f|
        task.async { 50.times { |i| adapter.store(FetchFile.build(task_list: list, id: "f#{f}-#{i}", n: i)) } }
      end.each(&:wait)
    end
    threads.each(&:join)
    expect(adapter.count(list)).to eq(800)
  end

  it "keeps the reactor running during a call to a node that never answers" do
    black_hole do |port|
      silent = silent_adapter(port)
      ticks = 0
      error = nil
      Async do |task|
        ticker = task.async do
          loop do
            ticks += 1
            sleep 0.01
          end
        end
        begin
          silent.find(list, "x")
        rescue Task::Error => e
          error = e
        end
        ticker.stop
      end
      expect(error).to be_a(Task::Error::NoHostAvailable).or be_a(Task::Error::Timeout)
      expect(ticks).to be >= 20
      report "a ticker fiber (every 10 ms) ticked #{ticks} times during a call to a silent node"
    end
  end

  it "ends a call to a silent node at with_timeout(0.5) within a second, and the adapter works after" do
    black_hole do |port|
      silent = silent_adapter(port)
      outcome = nil
      ended_after = nil
      ended_in_time = nil
      Async do |task|
        started = now
        call = task.async do |t|
          outcome = t.with_timeout(0.5) { silent.find(list, "x") }
        rescue Async::TimeoutError => e
          outcome = e
          nil # (a task whose value is an exception raises it from #wait)
        ensure
          ended_after = now - started
        end
        # The bound, polled: the call has ended within a second of its start.
        ended_in_time = within(1.0) { !ended_after.nil? }
        call.wait
      end
      expect(ended_in_time).to be(true)
      expect(outcome).to be_a(Async::TimeoutError)
      report format("with_timeout(0.5) ended the call to a silent node after %.3f s", ended_after)
      # The adapter still works: its next call waits and fails as a call to that node does.
      error = nil
      Async do
        silent.find(list, "x")
      rescue Task::Error => e
        error = e
      end
      expect(error).to be_a(Task::Error::NoHostAvailable).or be_a(Task::Error::Timeout)
    end
  end

  it "stops store_many at Async::Task#stop: it never reports done, and the adapter works after" do
    many = tasks(5000)
    done = nil
    stored_then = nil
    Async do |task|
      writer = task.async do
        # One request per task, one at a time: long enough to be stopped in the middle.
        done = adapter.store_many(many, concurrency: 1, batched: false)
      end
      task.async do
        sleep 0.005 until adapter.count(list).positive?
        writer.stop
        stored_then = adapter.count(list)
      end.wait
      writer.wait
    end
    expect(done).to be_nil
    expect(stored_then).to be_between(1, 4999)
    # The adapter works for the next call, in a fiber and out of one.
    extra = FetchFile.build(task_list: list, id: "after-stop", n: 0)
    Async { adapter.store(extra) }
    expect(adapter.find(list, "after-stop")&.id).to eq("after-stop")
    report "store_many stopped after #{stored_then} of 5000 writes"
  end

  it "stops a scan waiting for its next page at Async::Task#stop, and the adapter works after" do
    paged = cassandra_adapter(page_size: 10)
    paged.store_many(tasks(200))
    seen = []
    Async do |task|
      scan = task.async do
        paged.all(list).each { |t| seen << t.id }
      end
      # Fibers switch only where one waits: when this one runs, the scan waits for a page.
      task.async do
        sleep 0.001 until seen.size >= 30
        scan.stop
      end.wait
      scan.wait
    end
    expect(seen.size).to be_between(30, 199)
    expect(seen).to eq(seen.sort)
    total = nil
    Async { total = paged.all(list).count }
    expect(total).to eq(200)
    report "a scan of 200 tasks (pages of 10) stopped after #{seen.size}"
  end

  it "lets a child forked in a fiber make its own calls, while the parent's fibers go on" do
    adapter.find(list, "warm-up")
    reader, writer = IO.pipe
    status = nil
    parent_done = 0
    Async do |task|
      # Parent fibers waiting on the node while the child is made and runs.
      savers = (1..8).map do |i|
        task.async do
          adapter.store(FetchFile.build(task_list: list, id: "parent-#{i}", n: i))
          parent_done += 1
        end
      end
      pid = fork do
        reader.close
        t = FetchFile.build(task_list: list, id: "child", n: 1)
        adapter.store(t)
        writer.puts(adapter.find(list, "child")&.id)
        writer.close
        exit!(0)
      end
      writer.close
      savers.each(&:wait)
      _, status = Process.wait2(pid)
    end
    expect(status.success?).to be(true)
    expect(reader.read.strip).to eq("child")
    expect(parent_done).to eq(8)
    expect(adapter.find(list, "child")&.id).to eq("child")
  ensure
    reader&.close
  end

  it "goes on through trapped signals while fibers wait, and every save lands once" do
    count = 0
    old = trap("USR2") { count += 1 }
    sending = true
    sender = Thread.new do
      stop = now + 30
      while sending && now < stop
        sleep 0.02
        Process.kill("USR2", Process.pid)
      end
    end
    saved = 0
    # Saving until several signals came (polled), at most 20,000 saves.
    Async do |task|
      8.times.map do |f|
        task.async do
          i = 0
          while count < 5 && saved < 20_000
            adapter.store(FetchFile.build(task_list: list, id: format("%d-%06d", f, i), n: i))
            saved += 1
            i += 1
          end
        end
      end.each(&:wait)
    end
    sending = false
    sender.join
    expect(count).to be >= 5
    expect(adapter.count(list)).to eq(saved)
    report "#{saved} saves in 8 fibers through #{count} trapped signals"
  ensure
    sending = false
    sender&.join
    trap("USR2", old || "DEFAULT")
  end

  it "raises Interrupt at Ctrl-C, and SignalException at SIGTERM, while a fiber waits on a silent node" do
    black_hole do |port|
      { "INT" => "Interrupt", "TERM" => "SignalException" }.each do |signal, raised|
        script = <<~RUBY
          require "async"
          require "task"
          adapter = Task::DataInterface::CassandraAdapter.new(port: #{port}, connect_timeout: 5,
                                                              request_timeout: 5, retry_deadline: 10)
          clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
          sent = nil
          begin
            Async do |task|
              task.async { adapter.find("l", "x") }
              task.async do
                sleep 0.2
                sent = clock.call
                Process.kill("#{signal}", Process.pid)
              end
            end
          rescue #{raised} => e
            puts format("%s %.3f", e.class, clock.call - sent)
          end
        RUBY
        lib = File.expand_path("../lib", __dir__)
        out = IO.popen([RbConfig.ruby, "-I", lib, "-e", script], err: %i[child out], &:read)
        expect(out).to match(/^#{raised} (\S+)$/)
        delay = Float(out[/^#{raised} (\S+)$/, 1])
        expect(delay).to be < 1
        report format("SIG%s while a fiber waited: %s raised %.3f s later", signal, raised, delay)
      end
    end
  end

  it "keeps memory flat over 100,000 calls in fibers" do
    memory = Task::DataInterface::MemoryAdapter.new
    one = FetchFile.build(task_list: list, id: "m", n: 1)
    rss = -> { File.read("/proc/self/status")[/VmRSS:\s+(\d+)/, 1].to_i / 1024.0 }
    run = lambda do |calls|
      Async do |task|
        64.times.map do |f|
          task.async do
            (calls / 64).times do |i|
              if f.zero? || i % 16 != 0
                memory.store(one)
              else
                adapter.find(list, "missing")
              end
            end
          end
        end.each(&:wait)
      end
    end
    run.call(20_000)
    GC.start
    before = rss.call
    run.call(100_000)
    GC.start
    after = rss.call
    expect(after - before).to be < 16
    report format("100,000 calls in 64 fibers (1 in 16 to the node): RSS %.1f MB -> %.1f MB", before, after)
  end
end
