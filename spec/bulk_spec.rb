# frozen_string_literal: true

# store_many and delete_many send unlogged batches of one list each (the default), or one
# request per task (`batched: false`). On the real node; the failure reporting of a batch
# against a paused node is in faults_spec.
RSpec.describe "bulk calls on Cassandra" do
  let(:adapter) { cassandra_adapter }

  def ids_of(adapter, list)
    adapter.rows(list).map { |r| r[:id] }.to_a
  end

  [true, false].each do |batched|
    context "batched: #{batched}" do
      it "stores and completes tasks of several lists mixed in one call" do
        lists = Array.new(3) { unique_list("mixed") }
        tasks = (0...3_000).map { |i| FetchFile.build(task_list: lists[i % 3], id: format("%05d", i), n: i) }
        expect(adapter.store_many(tasks.shuffle(random: Random.new(3)), batched: batched)).to eq(3_000)
        lists.each_with_index do |list, k|
          expect(ids_of(adapter, list)).to eq((0...3_000).select { |i| i % 3 == k }.map { |i| format("%05d", i) })
        end
        use_adapter(adapter)
        expect(Task::Task.find(lists[1], "00004").data).to eq(n: 4)

        done = tasks.select { |t| t.id.to_i.even? }
        expect(adapter.delete_many(done, batched: batched)).to eq(1_500)
        left = lists.sum { |l| adapter.count(l) }
        expect(left).to eq(1_500)
        expect(lists.flat_map { |l| ids_of(adapter, l) }.map(&:to_i)).to all(be_odd)
      end

      it "stores tasks larger than one batch's bound, and batches that reach it, whole" do
        list = unique_list("large")
        big = "x" * 30_000 # two of these exceed a batch's 40 KiB: every batch holds one
        tasks = (0...20).map { |i| FetchFile.build(task_list: list, id: format("%03d", i), blob: big) }
        tasks << FetchFile.build(task_list: list, id: "huge", blob: "y" * 200_000) # above the bound alone
        # Small ones: about 600 of them fill a batch.
        tasks += (0...2_000).map { |i| FetchFile.build(task_list: list, id: format("s%05d", i)) }
        expect(adapter.store_many(tasks, batched: batched)).to eq(tasks.size)
        expect(adapter.count(list)).to eq(tasks.size)
        use_adapter(adapter)
        expect(Task::Task.find(list, "huge").data[:blob].size).to eq(200_000)
        expect(Task::Task.find(list, "007").data[:blob]).to eq(big)
        expect(adapter.delete_many(tasks, batched: batched)).to eq(tasks.size)
        expect(adapter.count(list)).to eq(0)
      end

      it "completes tasks with their claims, so that a task stored again can be claimed afresh" do
        list = unique_list("claimed")
        use_adapter(adapter)
        tasks = (0...50).map { |i| FetchFile.create(task_list: list, id: format("%02d", i)) }
        tasks.each { |t| expect(t.claim(for: 60, owner: "worker-a")).to be(true) }
        expect(adapter.claims(list).size).to eq(50)
        expect(adapter.delete_many(tasks, batched: batched)).to eq(50)
        expect(adapter.count(list)).to eq(0)
        expect(adapter.claims(list)).to be_empty
        again = FetchFile.create(task_list: list, id: "07")
        expect(again.claim(for: 60, owner: "worker-b")).to be(true)
      end
    end
  end

  it "applies the adapter's default_ttl to batched writes" do
    list = unique_list("ttl")
    expiring = cassandra_adapter(default_ttl: 2)
    expect(expiring.store_many((0...10).map { |i| FetchFile.build(task_list: list, id: i.to_s) })).to eq(10)
    expect(expiring.count(list)).to eq(10)
    deadline = now + 30
    sleep 0.5 until expiring.count(list).zero? || now > deadline
    expect(expiring.count(list)).to eq(0)
  end

  it "refuses a batched: that is not true or false" do
    expect { adapter.store_many([], batched: "yes") }.to raise_error(ArgumentError, /batched/)
  end
end
