# frozen_string_literal: true

require "json"
require "tmpdir"
require "timeout"

# claim_each(batch:): many tasks of one list claimed in one transaction, each run only while
# its lease surely lasts, the unreached given back. On every store; the races, the lease
# rule and the crash with real processes against the real node.
RSpec.describe "claim_each in batches" do
  let(:list) { unique_list("batches") }
  let(:lib) { File.expand_path("../lib", __dir__) }
  let(:worker) { File.expand_path("scripts/batch_worker.rb", __dir__) }

  stores = {
    memory: -> { Task::DataInterface::MemoryAdapter.new(max_attempts: 3, page_size: 50) },
    sqlite: -> { sqlite_adapter(max_attempts: 3) },
    cassandra: -> { cassandra_adapter(max_attempts: 3, page_size: 50) }
  }

  stores.each do |store, make|
    describe "on the #{store} store" do
      let(:adapter) { instance_exec(&make) }

      before { use_adapter(adapter) }

      it "runs every free task once, skips those another worker holds, and counts what it did" do
        ids = (1..130).map { |i| format("%03d", i) }
        adapter.store_many(ids.map { |id| FetchFile.build(task_list: list, id: id) })
        held = %w[005 050 099]
        held.each { |id| expect(FetchFile.new(task_list: list, id: id).claim(for: 60, owner: "other")).to be(true) }
        seen = []
        stats = {}
        expect(Task::Task.claim_each(list, for: 30, batch: 25, stats: stats) { |t| seen << [t.id, t.attempts] }).to eq(127)
        expect(seen.map(&:first).sort).to eq(ids - held)
        expect(seen.map(&:last).uniq).to eq([1])
        expect(stats).to include(ran: 127, batches: 6, collisions: 0, renewed: 0, skipped: 0, given_back: 0)
        expect(Task::Task.all(list).map(&:id).to_a).to eq(held)
        # Completed tasks leave no claim behind; the held ones keep theirs.
        expect(adapter.claims(list).map { |c| [c[:id], c[:owner]] }).to eq(held.map { |id| [id, "other"] })
        # The same stats Hash again: it adds up, and the call returns its own count.
        adapter.store_many(%w[201 202].map { |id| FetchFile.build(task_list: list, id: id) })
        expect(Task::Task.claim_each(list, for: 30, batch: 25, stats: stats) { nil }).to eq(2)
        expect(stats[:ran]).to eq(129)
      end

      it "publishes a claim_many.task event per batch and a complete.task event per task" do
        adapter.store_many((1..12).map { |i| FetchFile.build(task_list: list, id: format("%02d", i)) })
        events = []
        subscription = Task.subscribe { |e| events << e if e.name.end_with?(".task") && e.name != "all.task" }
        begin
          expect(Task::Task.claim_each(list, for: 30, batch: 5, owner: "w") { nil }).to eq(12)
        ensure
          Task.unsubscribe(subscription)
        end
        batches = events.select { |e| e.name == "claim_many.task" }
        expect(batches.map { |e| e.payload.slice(:task_list, :count, :owner, :won, :collisions) })
          .to match_array([5, 5, 2].map { |n| { task_list: list, count: n, owner: "w", won: n, collisions: 0 } })
        expect(events.count { |e| e.name == "complete.task" }).to eq(12)
      end

      it "shares one walk among the threads of a process: each window claimed once, by one thread" do
        ids = (1..600).map { |i| format("%03d", i) }
        adapter.store_many(ids.map { |id| FetchFile.build(task_list: list, id: id) })
        runs = Queue.new
        stats = Array.new(8) { {} }
        entered = Queue.new # each thread waits in its first task until all eight are in the walk
        Array.new(8) do |t|
          Thread.new do
            first = true
            Task::Task.claim_each(list, for: 30, batch: 20, owner: "thread-#{t}", stats: stats[t]) do |task|
              if first
                first = false
                entered << t
                Timeout.timeout(30) { sleep 0.01 until entered.size == 8 }
              end
              runs << task.id
            end
          end
        end.each(&:join)
        ran = Array.new(runs.size) { runs.pop }
        expect(ran.sort).to eq(ids)
        expect(stats.sum { |s| s[:batches] }).to eq(30)
        expect(stats.sum { |s| s[:collisions] }).to eq(0)
        expect(adapter.claims(list)).to eq([])
      end

      it "does not cut short the other threads' walk when one thread's read of the list raises" do
        ids = (1..300).map { |i| format("%03d", i) }
        adapter.store_many(ids.map { |id| FetchFile.build(task_list: list, id: id) })
        allow(Task::Task).to receive(:all).and_wrap_original do |original, *args, **options|
          raise Task::Error::Timeout, "a read of #{list} timed out" if Thread.current[:failing_reads]

          original.call(*args, **options)
        end
        # One thread reads the first slice and waits in its first task; another joins the walk,
        # runs the rest of that slice, and its read of the next slice raises.
        in_first = Queue.new
        failed = Queue.new
        other = Thread.new do
          first = true
          Task::Task.claim_each(list, for: 30, batch: 2) do
            next unless first

            first = false
            in_first << true
            Timeout.timeout(30) { failed.pop }
          end
        end
        in_first.pop
        failing = Thread.new do
          Thread.current[:failing_reads] = true
          Task::Task.claim_each(list, for: 30, batch: 2) { nil }
        rescue Task::Error::Timeout => e
          e
        ensure
          failed << true
        end
        expect(failing.value).to be_a(Task::Error::Timeout)
        expect(other.value).to be > 150
        expect(Task::Task.all(list).count).to eq(0)
      end

      it "records the failure of the task that raised and gives back the tasks it did not reach" do
        ids = (1..10).map { |i| format("%02d", i) }
        adapter.store_many(ids.map { |id| FetchFile.build(task_list: list, id: id) })
        ran = []
        stats = {}
        expect do
          Task::Task.claim_each(list, for: 30, batch: 10, stats: stats) do |t|
            ran << t.id
            raise IOError, "disk full" if ran.size == 3
          end
        end.to raise_error(IOError, "disk full")
        expect(stats).to include(ran: 2, given_back: 7)
        claims = adapter.claims(list).to_h { |c| [c[:id], c] }
        expect(claims.keys).to match_array(ids - ran.first(2))
        expect(claims[ran.last]).to include(owner: nil, attempts: 1, last_error: "IOError: disk full")
        (ids - ran).each { |id| expect(claims[id]).to include(owner: nil, attempts: 0, last_error: nil) }
        # The tasks given back are claimable at once, their attempts uncounted.
        rest = []
        expect(Task::Task.claim_each(list, for: 30, batch: 10) { |t| rest << [t.id, t.attempts] }).to eq(8)
        expect(rest.to_h).to eq((ids - ran).to_h { |id| [id, 1] }.merge(ran.last => 2))
        expect(adapter.claims(list)).to eq([])
      end

      [1, 10].each do |batch|
        it "goes on past a failing task with on_failure: (batch: #{batch}), recording it" do
          ids = (1..10).map { |i| format("%02d", i) }
          adapter.store_many(ids.map { |id| FetchFile.build(task_list: list, id: id) })
          failed = []
          ran = Task::Task.claim_each(list, for: 30, batch: batch, on_failure: ->(t, e) { failed << [t.id, e.message] }) do |t|
            raise IOError, "disk full at #{t.id}" if %w[03 07].include?(t.id)
          end
          expect(ran).to eq(8)
          expect(failed).to match_array([%w[03 disk\ full\ at\ 03], %w[07 disk\ full\ at\ 07]])
          expect(Task::Task.all(list).map(&:id).to_a).to eq(%w[03 07])
          claims = adapter.claims(list).to_h { |c| [c[:id], c] }
          expect(claims["07"]).to include(owner: nil, attempts: 1, last_error: "IOError: disk full at 07")
          expect { Task::Task.claim_each(list, for: 30, on_failure: "log") { nil } }
            .to raise_error(ArgumentError, /on_failure: must respond to call\(task, error\), got "log"/)
        end
      end

      it "leaves alone the claim another worker won on a completed task's id saved again before the batch ended" do
        adapter.store_many(%w[d0 d1].map { |id| FetchFile.build(task_list: list, id: id) })
        claim_b = nil
        ran = Task::Task.claim_each(list, for: 30, batch: 2, owner: "A") do |t|
          next unless t.id == "d1" # d0 ran first and is completed; its claim may wait for the batch's end

          FetchFile.create(task_list: list, id: "d0") # the application saves d0 again
          adapter.release(list, "d0", "A", nil) # as if A's claim on it had lapsed (no-op once deleted)
          claim_b = FetchFile.new(task_list: list, id: "d0").claim(for: 60, owner: "B")
        end
        expect([ran, claim_b]).to eq([2, true])
        expect(adapter.claim_info(list, "d0")).to include(owner: "B")
        expect(FetchFile.new(task_list: list, id: "d0").claim(for: 60, owner: "C")).to be(false)
      end

      it "gives back what it did not reach when the thread is killed inside the block" do
        adapter.store_many((1..6).map { |i| FetchFile.build(task_list: list, id: i.to_s) })
        inside = Queue.new
        walker = Thread.new do
          Task::Task.claim_each(list, for: 30, batch: 6) do |t|
            inside << t.id
            sleep
          end
        end
        first = Timeout.timeout(30) { inside.pop }
        walker.kill
        walker.join
        claims = adapter.claims(list)
        # The task inside the block when the thread died keeps its claim until it lapses (its
        # worker may still be running it); the others are free again.
        expect(claims.select { |c| c[:owner] }.map { |c| c[:id] }).to eq([first])
        expect(claims.reject { |c| c[:owner] }.map { |c| c[:attempts] }.uniq).to eq([0])
      end

      it "keeps max_attempts, dead and retry! as single claims do, and refuses a batch out of range" do
        FetchFile.create(task_list: list, id: "bad")
        3.times { expect { Task::Task.claim_each(list, for: 30, batch: 5) { raise "boom" } }.to raise_error("boom") }
        expect(Task::Task.claim_each(list, for: 30, batch: 5) { raise "never" }).to eq(0)
        expect(Task::Task.dead(list).map { |t| [t.id, t.attempts] }).to eq([["bad", 3]])
        Task::Task.dead(list).first.retry!
        expect(Task::Task.claim_each(list, for: 30, batch: 5) { nil }).to eq(1)
        [0, 501, 2.5, "20"].each do |bad|
          expect { Task::Task.claim_each(list, for: 30, batch: bad) { nil } }
            .to raise_error(ArgumentError, /claim_each batch: must be an Integer from 1 to 500, got #{Regexp.escape(bad.inspect)}/)
        end
      end
    end
  end

  # The race: PROCESSES x THREADS workers over one list until it is empty. Returns the
  # execution lines and the elapsed seconds.
  def race(store, tasks, batch:, processes: 4, threads: 8, lease: 60)
    adapter = yield
    race_list = unique_list("race#{batch}")
    adapter.store_many((1..tasks).map { |i| FetchFile.build(task_list: race_list, id: format("%05d", i)) })
    Dir.mktmpdir do |dir|
      log = File.join(dir, "runs")
      started = now
      pids = Array.new(processes) do
        spawn(RbConfig.ruby, "-I", lib, worker, store, race_list, batch.to_s, threads.to_s, lease.to_s, "0", log)
      end
      statuses = Timeout.timeout(900) { pids.map { |pid| Process.wait2(pid).last } }
      elapsed = now - started
      expect(statuses.map(&:success?)).to all(be(true))
      lines = File.readlines(log, chomp: true)
      stats = lines.grep(/\Astats /).map { |l| JSON.parse(l.split(" ", 3).last) }
      runs = lines.grep_v(/\Astats /).map { |l| l.split.first }
      expect(runs.size).to eq(tasks), "#{runs.size} runs for #{tasks} tasks"
      expect(runs.uniq.size).to eq(tasks)
      expect(adapter.rows(race_list).to_a).to eq([])
      expect(adapter.claims(race_list)).to eq([])
      totals = stats.each_with_object(Hash.new(0)) { |s, t| s.each { |k, v| t[k] += v } }
      [tasks / elapsed, elapsed, totals]
    end
  end

  # Batches of 50 (as bin/bench's each50), against one claim at a time in the same run. The
  # default batch (20) keeps more workers busy on a short list of slow tasks; the store
  # examples above run it.
  def race_batch
    50
  end

  def compare_races(name, store, &make)
    batch_rate, batch_time, batch_stats = race(store, 20_000, batch: race_batch, &make)
    single_rate, single_time, = race(store, 2_000, batch: 1, &make)
    report format("%s race, 4 processes x 8 threads: batch %d: 20,000 tasks in %.1f s (%.0f tasks/s, %d collisions " \
                  "in %d transactions); batch 1: 2,000 tasks in %.1f s (%.0f tasks/s); ratio %.1fx",
                  name, race_batch, batch_time, batch_rate, batch_stats["collisions"],
                  batch_stats["transactions"], single_time, single_rate, batch_rate / single_rate)
    [batch_rate, single_rate]
  end

  it "runs each of 20,000 tasks exactly once with 4 processes of 8 threads racing in batches on SQLite" do
    path = SqliteFiles.fresh_path("race")
    batch_rate, single_rate = compare_races("SQLite", "sqlite:#{path}") { sqlite_adapter(path: path) }
    expect(batch_rate).to be > single_rate
  end

  describe "on the Cassandra node, in a keyspace of their own" do
    let(:options) { cassandra_options.merge(keyspace: "task_batches") }
    let(:store) { "cassandra:#{options[:hosts].first}:#{options[:port]}:#{options[:keyspace]}" }
    let(:adapter) { Task::DataInterface::CassandraAdapter.new(**options) }

    before(:all) do
      Task::DataInterface::CassandraAdapter.new(**cassandra_options.merge(keyspace: "task_batches")).create_schema
    end

    it "runs each of 20,000 tasks exactly once with 4 processes of 8 threads racing, faster than one claim at a time" do
      batch_rate, single_rate = compare_races("Cassandra", store) { adapter }
      expect(batch_rate).to be > single_rate
    end

    it "runs no task after its lease could have lapsed: a lease shorter than the batch's work is renewed task by task" do
      adapter.store_many((1..24).map { |i| FetchFile.build(task_list: list, id: format("%02d", i)) })
      use_adapter(adapter)
      sends = Queue.new # [id, owner, sent at] of each claim or renewal that won
      recorder = Module.new do
        define_method(:claim_many) do |task_list, ids, seconds, owner|
          sent = Process.clock_gettime(Process::CLOCK_MONOTONIC)
          super(task_list, ids, seconds, owner).tap do |outcomes, _, _|
            ids.zip(outcomes) { |id, (status, _)| sends << [id, owner, sent] if status == :won }
          end
        end

        define_method(:renew) do |task_list, id, seconds, owner|
          sent = Process.clock_gettime(Process::CLOCK_MONOTONIC)
          super(task_list, id, seconds, owner).tap { |ok| sends << [id, owner, sent] if ok }
        end
      end
      Task::Task.interface.singleton_class.prepend(recorder)
      runs = Queue.new
      stats = Array.new(2) { {} }
      Array.new(2) do |w|
        Thread.new do
          Task::Task.claim_each(list, for: 2, batch: 20, owner: "worker-#{w}", stats: stats[w]) do |t|
            started = now
            sleep 0.5
            runs << [t.id, "worker-#{w}", started, now]
          end
        end
      end.each(&:join)
      runs = Array.new(runs.size) { runs.pop }
      sends = Array.new(sends.size) { sends.pop }
      expect(runs.map(&:first).sort).to eq((1..24).map { |i| format("%02d", i) })
      late = runs.reject do |id, owner, started, finished|
        fresh = sends.select { |i, o, at| i == id && o == owner && at <= started }.map(&:last).max
        fresh && finished <= fresh + 2
      end
      expect(late).to eq([])
      renewed = stats.sum { |s| s[:renewed] }
      expect(renewed).to be_positive
      report "for: 2, 0.5 s a task, batch 20, 2 workers: 24 runs, each within 2 s of its claim or renewal " \
             "(#{renewed} renewals, #{stats.sum { |s| s[:skipped] }} skipped)"
    end

    it "runs no task twice while claimed when the node is paused for 3 s in the middle of batches" do
      FaultNode.ensure_started!
      paused = FaultNode.adapter(request_timeout: 1, connect_timeout: 1, retry_deadline: 10)
      use_adapter(paused)
      lease = 5
      ids = (1..2000).map { |i| format("%04d", i) }
      paused.store_many(ids.map { |id| FetchFile.build(task_list: list, id: id) })
      sends = Queue.new # [id, owner, sent at] of each claim or renewal won
      recorder = Module.new do
        define_method(:claim_many) do |task_list, batch_ids, seconds, owner|
          sent = Process.clock_gettime(Process::CLOCK_MONOTONIC)
          super(task_list, batch_ids, seconds, owner).tap do |outcomes, _, _|
            batch_ids.zip(outcomes) { |id, (status, _)| sends << [id, owner, sent] if status == :won }
          end
        end
      end
      Task::Task.interface.singleton_class.prepend(recorder)
      runs = Queue.new
      errors = Queue.new
      stats = Array.new(6) { {} }
      workers = Array.new(6) do |w|
        Thread.new do
          limit = now + 120
          until Task::Task.count(list).zero? || now > limit
            begin
              Task::Task.claim_each(list, for: lease, batch: 20, owner: "worker-#{w}", stats: stats[w]) do |t|
                started = now
                runs << [t.id, "worker-#{w}", started, now]
              end
            rescue Task::Error => e
              errors << e
              sleep 0.2
            end
          end
        end
      end
      # Paused while the workers claim, run and complete: a pause catches some batch's
      # transaction on its way (its answer lost); up to three pauses, until one has.
      pid = FaultNode.pid
      pauses = 0
      settled = -> { stats.sum { |s| s[:settled].to_i } }
      3.times do
        Timeout.timeout(60) { sleep 0.02 until runs.size >= 300 * (pauses + 1) || workers.none?(&:alive?) }
        break unless workers.any?(&:alive?)

        Process.kill("STOP", pid)
        begin
          sleep 3
        ensure
          Process.kill("CONT", pid)
        end
        pauses += 1
        Timeout.timeout(30) { sleep 0.05 until settled.call.positive? || runs.size >= 300 * (pauses + 1) }
        break if settled.call.positive?
      end
      workers.each(&:join)
      runs = Array.new(runs.size) { runs.pop }
      sends = Array.new(sends.size) { sends.pop }
      expect(runs.map(&:first).uniq.sort).to eq(ids)
      expect(settled.call).to be_positive, "no batch's answer was lost in #{pauses} pauses"
      # Each run within the lease of its own claim, by the worker's clock from the sending.
      claim_of = lambda do |id, owner, started|
        sends.select { |i, o, at| i == id && o == owner && at <= started }.map(&:last).max
      end
      late = runs.reject { |id, owner, started, finished| (at = claim_of.call(id, owner, started)) && finished <= at + lease }
      expect(late).to eq([])
      # A task run twice: the second run began only after the first one's lease could lapse.
      twice = runs.group_by(&:first).select { |_, rs| rs.size > 1 }
      twice.each_value do |rs|
        rs.sort_by { |r| r[2] }.each_cons(2) do |first, second|
          expect(second[2]).to be >= claim_of.call(first[0], first[1], first[2]) + lease
        end
      end
      report format("node paused 3 s (%d time%s) under 6 workers in batches of 20 (for: 5): 2,000 tasks, %d runs, " \
                    "%d run again after a lapse, %d calls raised, %d collisions, %d batches' lost answers settled " \
                    "by a serial read", pauses, pauses == 1 ? "" : "s", runs.size, twice.size, errors.size,
                    stats.sum { |s| s[:collisions].to_i }, settled.call)
    end

    it "leaves a SIGKILLed worker's batch alone until its leases lapse, then runs each task once more at most" do
      adapter.store_many((1..50).map { |i| FetchFile.build(task_list: list, id: format("%02d", i)) })
      Dir.mktmpdir do |dir|
        log = File.join(dir, "runs")
        body = <<~RUBY
          require "task"
          class FetchFile; include Task::Task; end
          Task::Task.interface = Task::DataInterface::Interface.new(
            adapter: Task::DataInterface::CassandraAdapter.new(**#{options.inspect}))
          Task::Task.claim_each(#{list.dump}, for: 5, batch: 50) do |t|
            File.write(#{log.dump}, "\#{t.id}\\n", mode: "a")
            sleep
          end
        RUBY
        sent = now
        pid = spawn(RbConfig.ruby, "-I", lib, "-e", body)
        Timeout.timeout(60) { sleep 0.05 until File.exist?(log) && !File.read(log).empty? }
        Process.kill("KILL", pid)
        Process.wait(pid)
        killed_run = File.read(log).split
        use_adapter(adapter)
        early = []
        Task::Task.claim_each(list, for: 30, batch: 50) { |t| early << t.id }
        early_at = now
        expect(early).to eq([]), "ran #{early.size} tasks a killed worker still held"
        late = []
        limit = now + 30
        until Task::Task.count(list).zero? || now > limit
          Task::Task.claim_each(list, for: 30, batch: 50) { |t| late << [t.id, now] }
          sleep 0.2
        end
        expect(late.map(&:first).sort).to eq((1..50).map { |i| format("%02d", i) })
        # Nothing was taken over before the lease (5 s from the claim's sending) could lapse.
        expect(late.map(&:last).min - sent).to be >= 5
        expect(adapter.rows(list).to_a).to eq([])
        report format("SIGKILLed worker holding a batch of 50 for 5 s (it was running %s): recovery at +%.1f s ran 0, " \
                      "after the lapse ran 50 once each, from +%.1f s", killed_run.inspect, early_at - sent,
                      late.map(&:last).min - sent)
      end
    end
  end
end
