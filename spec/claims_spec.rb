# frozen_string_literal: true

require "tmpdir"
require "timeout"

# Claims: a task a worker holds is not run by anyone else until the claim lapses; attempts,
# failures and dead tasks; claim_each, the recovery loop. On both stores; the races and the
# crash with real processes against the real node.
RSpec.describe "claims" do
  let(:list) { unique_list("claims") }
  let(:lib) { File.expand_path("../lib", __dir__) }

  stores = {
    memory: -> { Task::DataInterface::MemoryAdapter.new(max_attempts: 3, page_size: 50) },
    cassandra: -> { cassandra_adapter(max_attempts: 3, page_size: 50) }
  }

  stores.each do |store, make|
    describe "on the #{store} store" do
      let(:adapter) { instance_exec(&make) }

      before { use_adapter(adapter) }

      it "says who holds each claim and how long it has left" do
        task = FetchFile.create(task_list: list, id: "a")
        FetchFile.create(task_list: list, id: "b")
        expect(task.claim(for: 60, owner: "w1")).to be(true)
        FetchFile.new(task_list: list, id: "b").tap { |b| b.claim(for: 60, owner: "w2") }.release(owner: "w2")
        a, b = adapter.claims(list)
        expect(a).to include(id: "a", owner: "w1", attempts: 1, last_error: nil)
        expect(a[:expires_in]).to be_between(55, 62) # a lease is kept up to 2 s beyond for:
        expect(b).to include(id: "b", owner: nil, attempts: 1, expires_in: nil)
      end

      it "claims for one owner at a time, renews and releases only for it, and lapses by itself" do
        task = FetchFile.create(task_list: list, id: "a")
        expect(task.claim(for: 1, owner: "w1")).to be(true)
        expect(task.attempts).to eq(1)
        expect(FetchFile.new(task_list: list, id: "a").claim(for: 1, owner: "w2")).to be(false)
        expect(task.renew(for: 2, owner: "w2")).to be(false)
        expect(task.renew(for: 2, owner: "w1")).to be(true)
        expect(task.release(owner: "w2")).to be(false)
        expect(task.release(owner: "w1")).to be(true)
        other = FetchFile.new(task_list: list, id: "a")
        expect(other.claim(for: 1, owner: "w2")).to be(true)
        expect(other.attempts).to eq(2)
        # The claim lapses by the store's clock, nobody releasing it: within for: + 3 s.
        third = FetchFile.new(task_list: list, id: "a")
        limit = now + 10
        sleep 0.05 until third.claim(for: 5, owner: "w3") || now > limit
        expect(third.attempts).to eq(3)
        # Completing is allowed to anyone (task_rb's complete); it ends the claim too.
        FetchFile.new(task_list: list, id: "a").complete
        expect(adapter.claims(list)).to eq([])
        expect(FetchFile.new(task_list: list, id: "a").claim(for: 1, owner: "w4")).to be(false)
      end

      it "records failures, makes a task dead after max_attempts, lists it, and retry! brings it back" do
        FetchFile.create(task_list: list, id: "bad")
        3.times do |i|
          expect do
            Task::Task.claim_each(list, for: 30) { |_t| raise "boom #{i}" }
          end.to raise_error(RuntimeError, "boom #{i}")
        end
        ran = Task::Task.claim_each(list, for: 30) { |_t| raise "never" }
        expect(ran).to eq(0)
        dead = Task::Task.dead(list)
        expect(dead.map { |t| [t.id, t.attempts, t.last_error] }).to eq([["bad", 3, "RuntimeError: boom 2"]])
        expect(Task::Task.find(list, "bad")).to be_a(FetchFile) # still stored
        dead.first.retry!
        expect(Task::Task.dead(list)).to eq([])
        seen = []
        expect(Task::Task.claim_each(list, for: 30) { |t| seen << t.id }).to eq(1)
        expect(seen).to eq(["bad"])
        expect(Task::Task.all(list).to_a).to eq([])
      end

      it "claim_each runs what is free, completes it, and skips what another worker holds" do
        ids = (1..120).map { |i| format("%03d", i) }
        adapter.store_many(ids.map { |id| FetchFile.build(task_list: list, id: id) })
        held = %w[005 050 099]
        held.each { |id| expect(FetchFile.new(task_list: list, id: id).claim(for: 60, owner: "other")).to be(true) }
        seen = []
        expect(Task::Task.claim_each(list, for: 30) { |t| seen << t.id }).to eq(117)
        expect(seen.sort).to eq(ids - held)
        expect(Task::Task.all(list).map(&:id).to_a).to eq(held)
      end

      it "claims rows written as task_rb writes them, without changing the task table" do
        adapter.store_row(task_list: list, id: "old", type: "FetchFile", data: '{"filename":"f.txt"}')
        before = adapter.rows(list).to_a
        task = Task::Task.find(list, "old")
        expect(task.claim(for: 30, owner: "w")).to be(true)
        task.fail_attempt(ArgumentError.new("nope"), owner: "w")
        expect(adapter.rows(list).to_a).to eq(before)
        expect(Task::Task.claim_each(list, for: 30) { |t| expect(t.filename).to eq("f.txt") }).to eq(1)
      end
    end
  end

  it "runs each of 2,000 tasks exactly once with 8 threads racing on the memory store" do
    adapter = Task::DataInterface::MemoryAdapter.new
    use_adapter(adapter)
    adapter.store_many((1..2000).map { |i| FetchFile.build(task_list: list, id: format("%04d", i)) })
    runs = Queue.new
    threads = 8.times.map do |t|
      Thread.new do
        Task::Task.claim_each(list, for: 30, owner: "thread-#{t}") do |task|
          runs << task.id
          sleep 0.0005
        end
      end
    end
    threads.each(&:join)
    ran = []
    ran << runs.pop until runs.empty?
    expect(ran.size).to eq(2000)
    expect(ran.uniq.size).to eq(2000)
    expect(adapter.rows(list).to_a).to eq([])
  end

  describe "with processes on the Cassandra node" do
    let(:options) { cassandra_options.merge(max_attempts: 5) }

    def script(body)
      <<~RUBY
        require "task"
        class FetchFile; include Task::Task; end
        adapter = Task::DataInterface::CassandraAdapter.new(**#{options.inspect})
        Task::Task.interface = Task::DataInterface::Interface.new(adapter: adapter)
        list = #{list.dump}
        #{body}
      RUBY
    end

    it "says how to create a missing claims table, then works once it is created" do
      table = "claimless_#{SecureRandom.hex(4)}"
      adapter = cassandra_adapter(tasks_table_name: table)
      adapter.create_schema(claims: false)
      use_adapter(adapter)
      task = FetchFile.create(task_list: list, id: "t")
      expect { task.claim(for: 5) }
        .to raise_error(Task::Error::QueryRejected, /claims table task_spec\.#{table}_claims does not exist.*create_claims_table/)
      # Completing in a process that never claimed needs no claims table.
      FetchFile.create(task_list: list, id: "u").complete
      adapter.create_claims_table
      expect(task.claim(for: 5)).to be(true)
    end

    it "runs each of 2,000 tasks exactly once with 4 processes of 8 threads racing" do
      adapter = cassandra_adapter
      adapter.store_many((1..2000).map { |i| FetchFile.build(task_list: list, id: format("%04d", i)) })
      Dir.mktmpdir do |dir|
        body = <<~RUBY
          out = File.open(File.join(#{dir.dump}, "runs-\#{Process.pid}"), "w")
          lock = Mutex.new
          8.times.map do
            Thread.new do
              Task::Task.claim_each(list, for: 60) do |task|
                lock.synchronize { out.puts("\#{task.id} \#{Process.pid}") }
                sleep 0.001
              end
            end
          end.each(&:join)
          out.close
        RUBY
        started = now
        pids = 4.times.map { spawn(RbConfig.ruby, "-I", lib, "-e", script(body)) }
        Timeout.timeout(600) { pids.each { |pid| Process.wait(pid) } }
        elapsed = now - started
        lines = Dir[File.join(dir, "runs-*")].flat_map { |f| File.readlines(f, chomp: true) }
        ids = lines.map { |l| l.split.first }
        expect(ids.size).to eq(2000), "#{ids.size} runs for 2,000 tasks"
        expect(ids.uniq.size).to eq(2000)
        expect(adapter.rows(list).to_a).to eq([])
        by_process = lines.group_by { |l| l.split.last }.transform_values(&:size)
        report format("claim_each race, 4 processes x 8 threads, 2,000 tasks: %.1f s (%.0f tasks/s), runs per process %s",
                      elapsed, 2000 / elapsed, by_process.values.sort.inspect)
      end
    end

    it "leaves a killed worker's claimed tasks alone until the claims lapse, then runs every one once" do
      adapter = cassandra_adapter
      adapter.store_many((1..200).map { |i| FetchFile.build(task_list: list, id: format("%03d", i)) })
      body = <<~RUBY
        Task::Task.all(list).each { |t| t.claim(for: 5) }
        $stdout.puts "claimed"
        $stdout.flush
        sleep 60
      RUBY
      io = IO.popen([RbConfig.ruby, "-I", lib, "-e", script(body)], "r")
      expect(Timeout.timeout(120) { io.gets }).to eq("claimed\n")
      claimed_at = now
      Process.kill("KILL", io.pid)
      io.close
      use_adapter(adapter)
      early = []
      Task::Task.claim_each(list, for: 30) { |t| early << t.id }
      early_done = now - claimed_at
      expect(early).to eq([]), "ran #{early.size} tasks a killed worker still held"
      # Each claim lapses within for: + 3 s of being made (the lease is kept up to 2 s longer,
      # counted from a whole second): the recovery runs until every task has run once.
      late = []
      limit = now + 30
      until Task::Task.count(list).zero? || now > limit
        Task::Task.claim_each(list, for: 30) { |t| late << t.id }
        sleep 0.2
      end
      expect(late.sort).to eq((1..200).map { |i| format("%03d", i) })
      recovered = now - claimed_at
      expect(adapter.rows(list).to_a).to eq([])
      report format("SIGKILLed worker holding 200 claims for 5 s: recovery at +%.1f s ran 0, after the lapse ran %d " \
                    "(all by +%.1f s)", early_done, late.size, recovered)
    end
  end
end
