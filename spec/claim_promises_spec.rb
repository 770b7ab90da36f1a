# frozen_string_literal: true

# What a claim promises, on every store: a lease keeps others out for at least `for:` seconds
# from claim's return; a failure is recorded whatever its message's encoding; times to live and
# leases a store could not hold are refused before anything is sent; one task's claim state
# is read by itself.
RSpec.describe "claim promises" do
  let(:list) { unique_list("promises") }

  # The last second Cassandra can hold an expiration at (2038-01-19T03:14:06Z): the node refuses
  # a TTL that ends later.
  LAST_EXPIRY = Time.utc(2038, 1, 19, 3, 14, 6).to_i

  stores = {
    memory: -> { Task::DataInterface::MemoryAdapter.new(max_attempts: 5) },
    cassandra: -> { cassandra_adapter(max_attempts: 5) },
    sqlite: -> { sqlite_adapter(max_attempts: 5) }
  }

  # Seconds from each claim's return to the return of the first competing claim that won:
  # `count` tasks, claimed at moments spread over a second (so that every fraction of the
  # store's clock second is hit), each watched by a competitor that tries again every `poll`
  # seconds until it wins.
  def lease_samples(lease, count:, poll:)
    ids = (1..count).map { |i| format("lease-%03d", i) }
    ids.each { |id| FetchFile.create(task_list: list, id: id) }
    threads = ids.each_with_index.map do |id, i|
      Thread.new do
        sleep(i.to_f / count) # spread the claims over one second
        mine = FetchFile.new(task_list: list, id: id)
        raise "the first claim of #{id} lost" unless mine.claim(for: lease, owner: "first")

        held_from = now
        other = FetchFile.new(task_list: list, id: id)
        limit = held_from + lease + 30
        sleep poll until other.claim(for: 60, owner: "second") || now > limit
        raise "the claim on #{id} never lapsed" if now > limit

        now - held_from
      end
    end
    threads.map(&:value)
  end

  stores.each do |store, make|
    describe "on the #{store} store" do
      let(:adapter) { instance_exec(&make) }

      before { use_adapter(adapter) }

      it "keeps others out for at least for: seconds after claim returns (40 samples)" do
        samples = lease_samples(1, count: 40, poll: 0.03)
        report format("claim(for: 1) on the #{store} store, 40 samples: others kept out %.2f-%.2f s",
                      samples.min, samples.max)
        expect(samples.min).to be >= 1.0
        # README: it lapses at most for: rounded up + 2 s after claim returns; the competitor's
        # poll and its own call come on top, hence the last second of slack.
        expect(samples.max).to be < 4 # 1 + 2, and the slack
      end

      it "keeps others out for at least a fractional for: (20 samples of for: 1.5)" do
        samples = lease_samples(1.5, count: 20, poll: 0.03)
        report format("claim(for: 1.5) on the #{store} store, 20 samples: others kept out %.2f-%.2f s",
                      samples.min, samples.max)
        expect(samples.min).to be >= 1.5
        # README: it lapses at most for: rounded up + 2 s after claim returns; the competitor's
        # poll and its own call come on top, hence the last second of slack.
        expect(samples.max).to be < 5 # 2 + 2, and the slack
      end

      {
        "binary" => ["read \xFF\xFE failed".b, "IOError: read \uFFFD\uFFFD failed"],
        "invalid UTF-8" => ["bad \xC3( byte".dup.force_encoding(Encoding::UTF_8), "IOError: bad \uFFFD( byte"],
        "UTF-16" => ["übel".encode(Encoding::UTF_16LE), "IOError: übel"]
      }.each do |kind, (message, recorded)|
        it "records a failure whose message is #{kind}, gives the claim up and re-raises the block's exception" do
          FetchFile.create(task_list: list, id: "t")
          raised = IOError.new(message)
          expect do
            Task::Task.claim_each(list, for: 60, owner: "w1") { raise raised }
          end.to raise_error { |e| expect(e).to equal(raised) }
          task = Task::Task.find(list, "t")
          expect(task.last_error).to eq(recorded)
          expect(task.last_error.encoding).to eq(Encoding::UTF_8)
          expect(task.attempts).to eq(1)
          # Given up: another owner takes it at once.
          expect(FetchFile.new(task_list: list, id: "t").claim(for: 60, owner: "w2")).to be(true)
        end
      end

      it "refuses a ttl: or for: beyond what a store can hold, naming the limit, before sending anything" do
        task = FetchFile.new(task_list: list, id: "t")
        expect { task.save(ttl: 7e8) }.to raise_error(ArgumentError, /630720000/)
        expect { task.save(ttl: 4e8) }.to raise_error(ArgumentError, /2038-01-19T03:14:06Z/)
        expect { adapter.store(task, ttl: 7e8) }.to raise_error(ArgumentError, /ttl.*630720000/)
        expect(Task::Task.find(list, "t")).to be_nil
        # Up to the last second Cassandra can hold, with a minute to spare for the clocks.
        task.save(ttl: LAST_EXPIRY - Time.now.to_i - 60)
        expect(Task::Task.find(list, "t")).not_to be_nil

        expect { task.claim(for: 7e8) }.to raise_error(ArgumentError, /for.*630720000/)
        expect { task.claim(for: 4e8) }.to raise_error(ArgumentError, /for.*2038-01-19T03:14:06Z/)
        expect(adapter.claims(list)).to eq([]) # nothing was sent
        expect(task.claim(for: 30, owner: "w")).to be(true)
        expect { task.renew(for: 4e8, owner: "w") }.to raise_error(ArgumentError, /2038/)
        expect(task.renew(for: LAST_EXPIRY - Time.now.to_i - 60, owner: "w")).to be(true)
      end

      it "refuses a default_ttl beyond what a store can hold" do
        make_with = lambda do |ttl|
          if store == :memory
            Task::DataInterface::MemoryAdapter.new(default_ttl: ttl)
          elsif store == :sqlite
            sqlite_adapter(default_ttl: ttl)
          else
            cassandra_adapter(default_ttl: ttl)
          end
        end
        expect { make_with.call(7e8) }.to raise_error(ArgumentError, /default_ttl.*630720000/)
        expect { make_with.call(4e8) }.to raise_error(ArgumentError, /default_ttl.*2038/)
        expect(make_with.call(3600)).to be_a(Task::DataInterface::NativeAdapter)
      end

      it "reads one task's claim state: claim_info" do
        FetchFile.create(task_list: list, id: "a")
        FetchFile.create(task_list: list, id: "b")
        FetchFile.create(task_list: list, id: "c")
        expect(FetchFile.new(task_list: list, id: "a").claim(for: 60, owner: "w1")).to be(true)
        b = FetchFile.new(task_list: list, id: "b")
        expect(b.claim(for: 60, owner: "w2")).to be(true)
        b.fail_attempt(RuntimeError.new("no"), owner: "w2")
        iface = Task::Task.interface
        a_info = iface.claim_info(list, "a")
        expect(a_info).to include(id: "a", owner: "w1", attempts: 1, last_error: nil)
        expect(a_info[:expires_in]).to be_between(55, 63)
        expect(iface.claim_info(list, "b")).to eq(id: "b", owner: nil, attempts: 1, last_error: "RuntimeError: no",
                                                  expires_in: nil)
        expect(iface.claim_info(list, "c")).to be_nil
        expect(iface.claim_info(unique_list("none"), "a")).to be_nil
        expect(adapter.claim_info(list, "a")).to include(id: "a", owner: "w1", attempts: 1)
        expect { adapter.claim_info("", "a") }.to raise_error(ArgumentError, /task_list/)
      end
    end
  end
end
