# frozen_string_literal: true

# The Cassandra adapter while its node is paused (SIGSTOP), killed (SIGKILL) and restarted, on a
# node of the tests' own (see FaultNode). Every save either returns, and its task is found once
# the node is back, or raises a Task::Error; none hangs; the adapter recovers by itself.
RSpec.describe "the Cassandra adapter under faults", :faults do
  # A call that takes this long has hung: far beyond request_timeout + retry_deadline below.
  HANG = 20

  before(:all) { FaultNode.ensure_started! }

  let(:list) { unique_list("faults") }
  let(:adapter) { FaultNode.adapter(request_timeout: 1, connect_timeout: 1, retry_deadline: 2) }

  # Saves one task after another on a thread of its own while the block runs; returns each
  # save's outcome: [:ok | :error, id, seconds, error].
  def saves_during
    outcomes = []
    lock = Mutex.new
    running = true
    saver = Thread.new do
      i = 0
      while running
        id = format("%06d", i += 1)
        started = now
        begin
          adapter.store(FetchFile.new(task_list: list, id: id, data: { i: i }))
          lock.synchronize { outcomes << [:ok, id, now - started, nil] }
        rescue Task::Error => e
          lock.synchronize { outcomes << [:error, id, now - started, e] }
        end
      end
    end
    yield -> { lock.synchronize { outcomes.dup } }
    running = false
    expect(saver.join(HANG)).not_to be_nil, "the save loop hung"
    outcomes
  end

  def wait_for(limit)
    deadline = now + limit
    sleep 0.05 until yield || now > deadline
    yield
  end

  def first_ok_after(outcomes, time_index)
    outcomes.drop(time_index).find { |o| o[0] == :ok }
  end

  # Called once the node answers again: seconds until a save started from now on succeeds
  # (failing the example past 15 s); then lets the loop save for two more seconds.
  def seconds_to_recover(seen)
    since = now
    mark = seen.call.size
    expect(wait_for(15) { first_ok_after(seen.call, mark) }).to be_truthy, "no save succeeded within 15 s of the node answering"
    elapsed = now - since
    sleep 2
    elapsed
  end

  def expect_every_returned_save_found(outcomes)
    reader = FaultNode.adapter
    saved = outcomes.select { |o| o[0] == :ok }.map { |o| o[1] }
    found = reader.rows(list).map { |r| r[:id] }.to_a
    expect(saved - found).to eq([]), "saves that returned but are not stored"
    outcomes.select { |o| o[0] == :error }.each { |o| expect(o[3]).to be_a(Task::Error) }
    expect(outcomes.map { |o| o[2] }.max).to be < HANG
  end

  it "fails calls with Timeout while the node is paused, then works again once it answers" do
    pid = FaultNode.pid
    recovery = nil
    outcomes = saves_during do |seen|
      expect(wait_for(30) { seen.call.count { |o| o[0] == :ok } >= 20 }).to be(true)
      Process.kill("STOP", pid)
      begin
        expect(wait_for(30) { seen.call.count { |o| o[0] == :error } >= 2 }).to be(true)
      ensure
        Process.kill("CONT", pid)
      end
      recovery = seconds_to_recover(seen)
    end
    errors = outcomes.select { |o| o[0] == :error }
    expect(errors.map { |o| o[3].class }.uniq).to eq([Task::Error::Timeout])
    expect(errors.first[3].message).to match(/may or may not have been applied/)
    expect_every_returned_save_found(outcomes)
    report format("SIGSTOP: %d saves, %d raised Task::Error::Timeout, first success %.2f s after SIGCONT",
                  outcomes.size, errors.size, recovery)
  end

  it "renews, fails and releases claims across a 2 s pause of the node, each answering what became of the claim" do
    claims = FaultNode.adapter(request_timeout: 1, connect_timeout: 1, retry_deadline: 10)
    pid = FaultNode.pid
    # Runs the call on a thread of its own, begun just after the node is paused, for 2 s.
    across_pause = lambda do |&call|
      Process.kill("STOP", pid)
      begin
        caller = Thread.new(&call)
        sleep 2
      ensure
        Process.kill("CONT", pid)
      end
      expect(caller.join(HANG)).not_to be_nil, "the call hung"
      caller.value
    end
    claim_of = ->(id) { claims.claims(list).find { |c| c[:id] == id } }
    %w[a b].each { |id| claims.store(FetchFile.new(task_list: list, id: id)) }

    expect(claims.claim(list, "a", 5, "worker-1")).to eq([:won, 1])
    expect(across_pause.call { claims.renew(list, "a", 60, "worker-1") }).to be(true)
    expect(claim_of.("a")).to include(owner: "worker-1")
    expect(claim_of.("a")[:expires_in]).to be > 30
    expect(across_pause.call { claims.release(list, "a", "worker-1", "Boom: lost") }).to be(true)
    expect(claim_of.("a")).to include(owner: nil, attempts: 1, last_error: "Boom: lost")

    expect(claims.claim(list, "b", 60, "worker-1")).to eq([:won, 1])
    expect(across_pause.call { claims.release(list, "b", "worker-1", nil) }).to be(true)
    expect(claim_of.("b")).to include(owner: nil)
    # Held by nobody: renew and release by a former owner say so, with or without a pause.
    expect(across_pause.call { claims.renew(list, "b", 60, "worker-1") }).to be(false)
    expect(claims.release(list, "b", "worker-1", nil)).to be(false)
    # Held by another: a pause changes nothing either.
    expect(claims.claim(list, "b", 60, "worker-2")).to eq([:won, 2])
    expect(across_pause.call { claims.release(list, "b", "worker-1", nil) }).to be(false)
    expect(claim_of.("b")).to include(owner: "worker-2")
  end

  it "fails calls while the node is killed, and works again within 15 s of its restart" do
    recovery = nil
    outcomes = saves_during do |seen|
      expect(wait_for(30) { seen.call.count { |o| o[0] == :ok } >= 20 }).to be(true)
      Process.kill("KILL", FaultNode.pid)
      expect(wait_for(30) { seen.call.count { |o| o[0] == :error } >= 2 }).to be(true)
      FaultNode.start!
      recovery = seconds_to_recover(seen)
    end
    errors = outcomes.select { |o| o[0] == :error }
    expect(errors).not_to be_empty
    expect(errors.map { |o| o[3].class }.uniq - [Task::Error::NoHostAvailable, Task::Error::Timeout]).to eq([])
    expect_every_returned_save_found(outcomes)
    report format("SIGKILL + restart: %d saves, %d raised, first success %.2f s after the node answered again",
                  outcomes.size, errors.size, recovery)
  end

  # Batched (the default: unlogged batches of one list) and one request per task.
  [{ batched: true }, { batched: false }].each do |mode|
    it "names exactly which tasks a bulk store could not write, and stores all the others (#{mode})" do
      quick = FaultNode.adapter(request_timeout: 0.5, connect_timeout: 0.5, retry_deadline: 0.5)
      tasks = (1..3000).map { |i| FetchFile.build(task_list: list, id: format("%05d", i)) }
      pid = FaultNode.pid
      failures = []
      bulk = Thread.new do
        quick.store_many(tasks, concurrency: 32, **mode)
      rescue Task::Error::BulkFailure => e
        failures = e.failures
        e
      end
      sleep 0.2
      Process.kill("STOP", pid)
      sleep 2
      Process.kill("CONT", pid)
      result = bulk.value
      expect(result).to be_a(Task::Error::BulkFailure).or eq(3000)
      failed = failures.map { |f| f[:id] }
      failures.each do |f|
        expect(f[:task_list]).to eq(list)
        expect(f[:error]).to be_a(Task::Error)
      end
      expect(result.message).to match(/could not store #{failures.size} of 3000 tasks/) unless failures.empty?
      stored = FaultNode.adapter.rows(list).map { |r| r[:id] }.to_a
      expect(tasks.map(&:id) - failed - stored).to eq([]), "tasks reported stored but missing"
      report "bulk store (#{mode}) across a 2 s pause: #{failures.size} of 3000 reported failed, every other one stored"
    end

    it "ends a bulk call about a retry deadline after the node stops answering, naming every task not written (#{mode})" do
      quick = FaultNode.adapter(request_timeout: 1, connect_timeout: 1, retry_deadline: 2)
      quick.find(list, "warm-up")
      tasks = (1..1000).map { |i| FetchFile.build(task_list: list, id: format("%05d", i)) }
      pid = FaultNode.pid
      failure = nil
      Process.kill("STOP", pid)
      begin
        started = now
        begin
          # One request per task: 64 at a time. Batched: 1,000 small tasks make two batches,
          # sent one at a time, so that the second is never attempted.
          quick.store_many(tasks, **mode, concurrency: mode[:batched] ? 1 : 64)
        rescue Task::Error::BulkFailure => e
          failure = e
        end
        elapsed = now - started
      ensure
        Process.kill("CONT", pid)
      end
      expect(failure).to be_a(Task::Error::BulkFailure)
      # retry_deadline (2) + one request (1 + connect guard), with slack for a busy machine.
      expect(elapsed).to be < 10
      failed = failure.failures.map { |f| f[:id] }
      expect(failed.uniq.size).to eq(failed.size)
      # The node was paused before the first request: nothing can have been written.
      expect(failed.size).to eq(1000)
      failure.failures.each { |f| expect(f[:error]).to be_a(Task::Error) }
      expect(failure.failures.map { |f| f[:error].message }).to include(a_string_matching(/not attempted/))
      stored = FaultNode.adapter.rows(list).map { |r| r[:id] }.to_a
      # A timed-out write may have been applied; every task is either reported or stored.
      expect(tasks.map(&:id) - failed - stored).to eq([])
      report format("store_many(1000, %s) against a paused node (retry_deadline 2, request_timeout 1): " \
                    "BulkFailure after %.1f s, %d of 1000 reported", mode, elapsed, failed.size)
    end
  end

  it "logs in with a username and password, and says when the login is refused" do
    expect(FaultNode.adapter.find(list, "x")).to be_nil
    wrong = FaultNode.adapter(password: "wrong")
    expect { wrong.find(list, "x") }.to raise_error(Task::Error::QueryRejected, /127\.0\.0\.1:#{FaultNode::PORT}.*login/)
    anonymous = Task::DataInterface::CassandraAdapter.new(port: FaultNode::PORT, keyspace: "task_faults")
    expect { anonymous.find(list, "x") }.to raise_error(Task::Error::QueryRejected, /username: and password:/)
  end
end
