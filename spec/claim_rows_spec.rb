# frozen_string_literal: true

# A task's claim row goes with the task: after complete, delete_many, delete_list, or a claim
# that found its task gone, no claim row is left, whatever the race, so a task saved again
# under the same id starts with no attempts and can be claimed. Run on the fault-test node,
# whose settings (commitlog_sync batch, unsafesystem off) are where claim rows were seen to
# outlive their tasks; and there one task's claim is read without the rest of its list's
# claims (whose deletions that node fails a read over).
RSpec.describe "claim rows", :faults do
  before(:all) { FaultNode.ensure_started! }

  let(:adapter) { FaultNode.adapter(max_attempts: 5, request_timeout: 5, retry_deadline: 20) }
  let(:list) { unique_list("rows") }

  before { use_adapter(adapter) }

  def save_tasks(task_list, count, prefix = "t")
    tasks = (1..count).map { |i| FetchFile.build(task_list: task_list, id: format("#{prefix}%04d", i)) }
    adapter.store_many(tasks)
    tasks
  end

  # Runs `threads` threads of claim_each over the list until it is empty.
  def race_claim_each(task_list, threads: 8)
    runs = Queue.new
    threads.times.map do |t|
      Thread.new do
        Task::Task.claim_each(task_list, for: 30, owner: "thread-#{t}") { |task| runs << task.id }
      end
    end.each(&:join)
    runs.size
  end

  it "leaves no claim row after 8 threads of claim_each complete a list, and an id saved again starts afresh" do
    leftovers = []
    ran = 0
    3.times do
      round = unique_list("rows")
      save_tasks(round, 100)
      ran += race_claim_each(round)
      expect(adapter.count(round)).to eq(0)
      left = adapter.claims(round)
      leftovers << left.size
      next if left.empty?

      # What such a row did: the task saved again inherits its attempts, or cannot be claimed.
      id = left.first[:id]
      FetchFile.create(task_list: round, id: id)
      task = Task::Task.find(round, id)
      won = task.claim(for: 30, owner: "again")
      leftovers << "#{id}: claim #{won ? "won at attempt #{task.attempts}" : "refused"}"
    end
    report "8 threads of claim_each, 3 rounds of 100 tasks (#{ran} run): claim rows left #{leftovers.inspect}"
    expect(ran).to eq(300)
    expect(leftovers).to eq([0, 0, 0])
    FetchFile.create(task_list: list, id: "again")
    task = Task::Task.find(list, "again")
    expect(task.claim(for: 30, owner: "new")).to be(true)
    expect(task.attempts).to eq(1)
  end

  it "leaves no claim row when delete_many and delete_list race claims, or a claim finds its task gone" do
    many = unique_list("many")
    tasks = save_tasks(many, 200)
    whole = unique_list("whole")
    save_tasks(whole, 200)
    claimers = [many, whole].flat_map do |l|
      4.times.map do |t|
        Thread.new do
          Task::Task.all(l).to_a.shuffle.each { |task| task.claim(for: 30, owner: "c#{t}") }
        end
      end
    end
    sleep 0.05 until adapter.claims(many).size >= 20 && adapter.claims(whole).size >= 20
    adapter.delete_many(tasks)
    adapter.delete_list(whole)
    claimers.each(&:join)
    left = [adapter.claims(many).size, adapter.claims(whole).size]
    report "claims racing delete_many and delete_list of 200 tasks each: claim rows left #{left.inspect}"
    expect(left).to eq([0, 0])
    FetchFile.create(task_list: whole, id: "t0001")
    task = Task::Task.find(whole, "t0001")
    expect(task.claim(for: 30, owner: "new")).to be(true)
    expect(task.attempts).to eq(1)
  end

  it "leaves no claim row when a store that never claimed completes the task (a web page, a command)" do
    failing = FetchFile.create(task_list: list, id: "failing")
    expect(failing.claim(for: 60, owner: "w")).to be(true)
    failing.fail_attempt(RuntimeError.new("no"), owner: "w")
    gone = save_tasks(list, 3, "many")
    gone.each { |t| expect(t.claim(for: 60, owner: "w")).to be(true) }
    whole = unique_list("whole")
    FetchFile.create(task_list: whole, id: "w").claim(for: 60, owner: "w")
    # Another config: a store of its own, which has claimed nothing (as in another process).
    operator = FaultNode.adapter(max_attempts: 5, request_timeout: 6)
    operator.delete(list, "failing")
    operator.delete_many(gone)
    operator.delete_list(whole)
    expect([adapter.claims(list), adapter.claims(whole)]).to eq([[], []])
    FetchFile.create(task_list: list, id: "failing")
    again = Task::Task.find(list, "failing")
    expect(again.claim(for: 60, owner: "w2")).to be(true)
    expect([again.attempts, again.last_error]).to eq([1, nil])
  end

  it "reads one task's claim without its list's other claims (task show, the web task page)" do
    done = save_tasks(list, FaultNode::TOMBSTONE_FAILURE + 300, "a")
    done.each_slice(done.size / 8 + 1).map do |slice|
      Thread.new { slice.each { |t| expect(t.claim(for: 60, owner: "w")).to be(true) } }
    end.each(&:join)
    adapter.delete_many(done)
    live = FetchFile.create(task_list: list, id: "live")
    expect(live.claim(for: 60, owner: "w")).to be(true)
    # The whole claims partition cannot be read any more; the one row can.
    expect { adapter.claims(list) }.to raise_error(Task::Error::TooManyTombstones)
    expect(Task::Task.interface.claim_info(list, "live")).to include(id: "live", owner: "w", attempts: 1)
    expect(Task::Task.find(list, "live").attempts).to eq(1)
    expect(Task::Task.interface.claim_info(list, "a0001")).to be_nil
  end
end
