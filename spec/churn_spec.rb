# frozen_string_literal: true

# Lists that churn: every completed task leaves a tombstone. A read that steps over too many
# fails at once with its own error that says what to do; tables are made (or tuned) to purge
# them; a long scan can resume after an id.
RSpec.describe "lists that churn" do
  let(:list) { unique_list("churn") }

  {
    memory: -> { Task::DataInterface::MemoryAdapter.new(page_size: 7) },
    cassandra: -> { cassandra_adapter(page_size: 7) }
  }.each do |store, make|
    it "resumes a scan after a given id (#{store})" do
      adapter = instance_exec(&make)
      use_adapter(adapter)
      ids = (1..30).map { |i| format("%03d", i) }
      adapter.store_many(ids.map { |id| FetchFile.build(task_list: list, id: id) })
      adapter.store_row(task_list: list, id: "010", type: "FailingTask", data: "{}") # a second type under one id
      expect(Task::Task.all(list, after: "010").map(&:id).to_a).to eq(ids.drop(10))
      expect(adapter.all(list, after: "0105").map(&:id).to_a).to eq(ids.drop(10))
      expect(Task::Task.all(list, after: "030").to_a).to eq([])
      expect(Task::Task.all(list, after: nil).count).to eq(31)
      expect { Task::Task.all(list, after: [1]) }.to raise_error(ArgumentError, /id/)
    end
  end

  {
    memory: -> { Task::DataInterface::MemoryAdapter.new(page_size: 100) },
    cassandra: -> { cassandra_adapter(page_size: 100, keyspace: "task_spec_lists") }
  }.each do |store, make|
    it "counts a list page by page, and walks every list of the store lazily (#{store})" do
      if store == :cassandra
        # A keyspace of its own, so that the walk sees only this example's lists.
        Task::DataInterface::CassandraAdapter.new(**cassandra_options, keyspace: "task_spec_lists").create_schema
      end
      adapter = instance_exec(&make)
      adapter.delete_list(list) # from an earlier run
      use_adapter(adapter)
      adapter.store_many((1..2_345).map { |i| FetchFile.build(task_list: list, id: i.to_s) })
      adapter.delete_many((1..45).map { |i| [list, i.to_s] })
      expect(Task::Task.count(list)).to eq(2_300)
      expect(Task::Task.count("#{list}-none")).to eq(0)

      names = (1..10_000).map { |i| format("#{list}-%05d", i) }
      adapter.store_many(names.map { |n| FetchFile.build(task_list: n, id: "x") }, concurrency: 128)
      walked = Task::Task.lists
      expect(walked).to be_a(Enumerator::Lazy)
      seen = walked.select { |n| n.start_with?("#{list}-") }.to_a
      expect(seen.sort).to eq(names)
      expect(seen.uniq.size).to eq(seen.size)
      expect(Task::Task.lists.first(3).size).to eq(3)
    ensure
      adapter&.delete_many(names.map { |n| [n, "x"] }) if names
    end
  end

  {
    memory: ->(ttl) { Task::DataInterface::MemoryAdapter.new(default_ttl: ttl) },
    cassandra: ->(ttl) { cassandra_adapter(default_ttl: ttl) }
  }.each do |store, make|
    it "lets tasks saved with a time to live disappear on their own (#{store})" do
      adapter = instance_exec(nil, &make)
      use_adapter(adapter)
      FetchFile.new(task_list: list, id: "short", data: { n: 1 }).save(ttl: 1)
      FetchFile.new(task_list: list, id: "kept", data: { n: 1 }).save
      expect(adapter.rows(list).map { |r| r[:data] }.to_a).to eq(['{"n":1}', '{"n":1}'])
      expiring = instance_exec(1, &make)
      expiring.store(FetchFile.new(task_list: "#{list}-d", id: "default"))
      expiring.store(FetchFile.new(task_list: "#{list}-d", id: "longer"), ttl: 60)
      expect(Task::Task.find(list, "short")).to be_a(FetchFile)
      expect(Task::Task.count(list)).to eq(2)
      sleep 2.2
      expect(Task::Task.find(list, "short")).to be_nil
      expect(Task::Task.all(list).map(&:id).to_a).to eq(["kept"])
      expect(Task::Task.count(list)).to eq(1)
      expect(expiring.all("#{list}-d").map(&:id).to_a).to eq(["longer"])
      expect { FetchFile.new(task_list: list, id: "x").save(ttl: 0) }.to raise_error(ArgumentError, /ttl/)
      expect { FetchFile.new(task_list: list, id: "x").save(tll: 1) }.to raise_error(ArgumentError, /tll/)
    end
  end

  {
    memory: -> { Task::DataInterface::MemoryAdapter.new(page_size: 3) },
    cassandra: -> { cassandra_adapter(page_size: 3) }
  }.each do |store, make|
    it "knows when each task read back was saved, and finds the ones older than an age, lazily (#{store})" do
      use_adapter(instance_exec(&make))
      built = FetchFile.new(task_list: list, id: "old1", data: { n: 1 })
      expect(built.saved_at).to be_nil
      first = Time.now
      built.save
      FetchFile.new(task_list: list, id: "old2").save
      expect(built.saved_at).to be_nil # the store's write time is known only on reading back
      sleep 1.2
      second = Time.now
      %w[new1 new2].each { |id| FetchFile.new(task_list: list, id: id).save }

      found = Task::Task.find(list, "old1")
      expect(found.saved_at).to be_a(Time)
      # The store's clock (the node's, on this machine) stamps writes to the millisecond.
      expect(found.saved_at).to be_within(0.5).of(first)
      expect(Task::Task.all(list).map(&:saved_at).to_a).to all(be_a(Time))
      expect(Task::Task.find(list, "new1").saved_at).to be_within(0.5).of(second)
      expect(Task::Task.find(list, "new1").saved_at).to be > found.saved_at

      stale = Task::Task.older_than(list, 1)
      expect(stale).to be_a(Enumerator::Lazy)
      expect(stale.map(&:id).to_a).to eq(%w[old1 old2])
      expect(Task::Task.older_than(list, 0).map(&:id).to_a).to eq(%w[new1 new2 old1 old2])
      expect(Task::Task.older_than(list, 3600).to_a).to eq([])
      expect(Task::Task.older_than(list, 1, after: "old1").map(&:id).to_a).to eq(%w[old2])
      expect { Task::Task.older_than(list, -1) }.to raise_error(ArgumentError, /seconds >= 0, got -1/)
      expect { Task::Task.older_than(list, "1") }.to raise_error(ArgumentError, /got "1"/)

      # Saving again moves the write time on; the task is no longer stale.
      found.save
      expect(Task::Task.older_than(list, 1).map(&:id).to_a).to eq(%w[old2])
      expect(Task::Task.find(list, "old1").saved_at).to be >= second
    end
  end

  it "prints, and runs, the ALTER TABLE that gives an existing table the options for churn" do
    adapter = cassandra_adapter
    statements = adapter.tune_table
    expect(statements).to eq([
      "ALTER TABLE task_spec.tasks WITH gc_grace_seconds = 10800 AND compaction = " \
      "{'class': 'SizeTieredCompactionStrategy', 'unchecked_tombstone_compaction': 'true', " \
      "'tombstone_threshold': '0.1', 'tombstone_compaction_interval': '3600'}",
      "ALTER TABLE task_spec.tasks_claims WITH gc_grace_seconds = 10800 AND compaction = " \
      "{'class': 'SizeTieredCompactionStrategy', 'unchecked_tombstone_compaction': 'true', " \
      "'tombstone_threshold': '0.1', 'tombstone_compaction_interval': '3600'}"
    ])
    expect(adapter.tune_table(run: true)).to eq(statements)
    # The tables keep working after the change.
    FetchFile.new(task_list: list, id: "t").tap { |t| adapter.store(t) }
    expect(adapter.find(list, "t")).to be_a(FetchFile)
    expect(Task::DataInterface::MemoryAdapter.new.respond_to?(:tune_table)).to be(false)
  end

  describe "a read over too many tombstones", :faults do
    before(:all) { FaultNode.ensure_started! }

    it "fails at once with TooManyTombstones naming the list, the table and the remedies" do
      adapter = FaultNode.adapter(request_timeout: 5, retry_deadline: 20)
      done = (1..FaultNode::TOMBSTONE_FAILURE + 500).map { |i| FetchFile.build(task_list: list, id: format("a%06d", i)) }
      adapter.store_many(done)
      adapter.delete_many(done)
      live = (1..100).map { |i| FetchFile.build(task_list: list, id: format("b%03d", i)) }
      adapter.store_many(live)
      started = now
      expect { adapter.all(list).to_a }.to raise_error(Task::Error::TooManyTombstones) { |e|
        expect(e.message).to include(list, "task_faults.tasks", "tombstones", "gc_grace_seconds", "tune_table")
      }
      elapsed = now - started
      # Not retried for retry_deadline (20 s): it came back within one request timeout.
      expect(elapsed).to be < 5
      # The live tasks are still there, and a scan after the deleted ids reads them.
      expect(adapter.all(list, after: format("a%06d", done.size)).map(&:id).to_a).to eq(live.map(&:id))
      report format("a scan over %d tombstones: TooManyTombstones after %.2f s (retry_deadline 20)",
                    done.size, elapsed)
    end

    # The maintenance the README gives for a list that already fails this way: shorten the
    # grace period (tune_table), flush, compact. Compaction keeps every tombstone younger than
    # the grace period, so under the default the error stays; once the grace period is short
    # and has passed, compaction drops them (the table shrinks to its live rows) and reads see
    # the live tasks again. (Cassandra also stops counting a tombstone older than the grace
    # period when it reads, so the shorter grace period is what lifts the error; compaction is
    # what stops reads stepping over the tombstones at all.)
    it "reads the live tasks again, in id order, after the grace period is shortened and the table flushed and compacted" do
      admin = FaultNode.adapter(keyspace: "task_purge", request_timeout: 5, retry_deadline: 20)
      admin.create_schema
      admin.tune_table(run: true) # the default grace period, after an earlier run shortened it
      table = "task_purge.tasks"
      done = (1..FaultNode::TOMBSTONE_FAILURE * 4).map { |i| format("a%06d", i) }
      started = now
      done.each_slice(5_000) do |ids|
        tasks = ids.map { |id| FetchFile.build(task_list: list, id: id) }
        admin.store_many(tasks, concurrency: 128)
        admin.delete_many(tasks, concurrency: 128)
      end
      churned = now - started
      live = (1..1_000).map { |i| format("b%04d", i) }
      admin.store_many(live.map { |id| FetchFile.build(task_list: list, id: id) }, concurrency: 128)

      expect { admin.all(list).first(1) }.to raise_error(Task::Error::TooManyTombstones, /#{table}/)
      expect { admin.count(list) }.to raise_error(Task::Error::TooManyTombstones)

      FaultNode.nodetool("flush", "task_purge", "tasks")
      FaultNode.nodetool("compact", "task_purge", "tasks")
      kept = FaultNode.table_stat(table, "Space used (live)")
      # Compacted under the default grace period: the tombstones are kept, the read still fails.
      expect { admin.all(list).first(1) }.to raise_error(Task::Error::TooManyTombstones)

      expect(admin.tune_table(run: true, gc_grace_seconds: 1).first)
        .to start_with("ALTER TABLE #{table} WITH gc_grace_seconds = 1 AND compaction")
      sleep 1.5 # the deletions are now older than the grace period
      compacting = now
      FaultNode.nodetool("flush", "task_purge", "tasks")
      FaultNode.nodetool("compact", "task_purge", "tasks")
      compacted = now - compacting
      purged = FaultNode.table_stat(table, "Space used (live)")
      expect(purged).to be < kept / 4

      scanning = now
      expect(admin.all(list).map(&:id).to_a).to eq(live)
      scanned = now - scanning
      expect(admin.count(list)).to eq(1_000)
      report format("%d tasks saved and completed in %.1f s; flush + compact %.1f s; then a scan of the " \
                    "1,000 live ones in %.3f s; %d bytes on disk with the tombstones, %d without",
                    done.size, churned, compacted, scanned, kept, purged)
    ensure
      admin&.delete_list(list)
    end
  end
end
