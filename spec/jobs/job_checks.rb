# frozen_string_literal: true

# Run by spec/jobs_spec.rb in a process of its own (`rspec spec/jobs/job_checks.rb`): it
# loads ActiveJob (and with it ActiveSupport's core extensions) and Sidekiq's testing mode,
# which must not leak into the suite's process. Every store here is the memory store.
$LOAD_PATH.unshift File.expand_path("../../lib", __dir__)
require "json"
require "logger"
require "stringio"
require "sidekiq"
require "sidekiq/testing"
require "task/active_job"
require "task/job"

LOG = StringIO.new
ActiveJob::Base.logger = Logger.new(LOG)
Task.logger = Logger.new(LOG)
Sidekiq.logger = Logger.new(LOG)
Sidekiq.strict_args!

class ChecksBoard
  include Task::Task

  data_attr_reader :color

  EXECUTED = Queue.new

  def execute(_opts = {})
    EXECUTED << [id, color]
    "painted #{id}"
  end
end

class PaintLaterJob < ActiveJob::Base
  include Task::Job

  task_claim for: 42

  def perform(task, suffix = "")
    claim = Task::Task.interface.claim_info(task.task_list, task.id)
    ChecksBoard::EXECUTED << [:claim, claim[:owner], claim[:expires_in]]
    task.execute.to_s + suffix
  end
end

class DefaultPerformJob < ActiveJob::Base
  include Task::Job
end

class BrokenJob < ActiveJob::Base
  include Task::Job

  def perform(task)
    raise ArgumentError, "cannot paint #{task.id}"
  end
end

class RetriedJob < ActiveJob::Base
  include Task::Job

  retry_on RuntimeError, attempts: 3, wait: 0

  def perform(task)
    raise "flaky #{task.id}"
  end
end

# A perform longer than its lease (3 s of work, 1 s claims that last at most 3 s): while it
# works it tries, every 50 ms, to claim its own task as another worker would, and returns what
# those claims answered; it stops early once one is won.
class LongPaintJob < ActiveJob::Base
  include Task::Job

  task_claim for: 1

  def perform(task, seconds = 3.5)
    other = ChecksBoard.new(task_list: task.task_list, id: task.id)
    clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
    finish = clock.call + seconds
    answers = []
    while clock.call < finish && !answers.last
      answers << other.claim(for: 1, owner: "another worker")
      sleep 0.05 # the work between two looks
    end
    answers
  end
end

class UnrenewedLongPaintJob < LongPaintJob
  task_claim for: 1, renew: false
end

class SidekiqPaintJob
  include Sidekiq::Job
  include Task::Job

  task_claim for: 30
end

# A subclass's own perform is wrapped too, and its super reaches the parent's without a
# second claim.
class SidekiqChildJob < SidekiqPaintJob
  def perform(task)
    owner = Task::Task.interface.claim_info(task.task_list, task.id)[:owner]
    "child (claimed by #{owner.split("/")[1]}) #{super}"
  end
end

class RecoverBoardsJob < ActiveJob::Base
  include Task::Recovery

  recovers "walls", "doors", for: 60
end

class SidekiqRecoverJob
  include Sidekiq::Job
  include Task::Recovery

  recovers "walls", for: 60

  def recover_task(task)
    raise "cracked #{task.id}" if task.color == "cracked"

    task.execute
  end
end

RSpec.describe "Task::Job, Task::Recovery and the ActiveJob serializer, in one process" do
  let(:store) { Task::DataInterface::MemoryAdapter.new(max_attempts: 3) }

  before do
    Task::Task.interface = Task::DataInterface::Interface.new(adapter: store)
    ActiveJob::Base.queue_adapter = :inline
    ChecksBoard::EXECUTED.clear
    LOG.truncate(0)
    LOG.rewind
  end

  def executed
    Array.new(ChecksBoard::EXECUTED.size) { ChecksBoard::EXECUTED.pop }
  end

  def board(id, color = "red", list: "walls")
    ChecksBoard.create(task_list: list, id: id, color: color)
  end

  describe "the ActiveJob serializer" do
    it "passes a task as its JSON form, JSON-native, and gives back a task of its class" do
      task = ChecksBoard.build(task_list: "walls", id: "w1", color: "red", nested: { "k" => [1, :v, nil, 2.5] })
      args = ActiveJob::Arguments.serialize([task, "other"])
      expect(JSON.parse(JSON.generate(args))).to eq(args)
      expect(args.first).to eq({ "_aj_serialized" => "Task::ActiveJobSerializer" }.merge(task.as_json))
      back = ActiveJob::Arguments.deserialize(JSON.parse(JSON.generate(args)))
      expect(back.first).to be_a(ChecksBoard)
      expect(back.first.as_json).to eq(task.as_json)
      expect(back.last).to eq("other")
    end

    it "names the class, list and id when the task's class is not defined where the job runs" do
      args = ActiveJob::Arguments.serialize([board("w1")])
      args.first["type"] = "Gone::Board"
      expect { ActiveJob::Arguments.deserialize(args) }.to raise_error(ActiveJob::DeserializationError) { |e|
        expect(e.cause).to be_a(Task::Error::InvalidType)
        expect(e.message).to include('task "walls"/"w1": its class "Gone::Board" is not defined in this process')
      }
    end
  end

  describe "Task::Job in ActiveJob" do
    it "claims the task for the class's lease, performs it, completes it, and returns perform's value" do
      task = board("w1")
      expect(PaintLaterJob.perform_now(task, "!")).to eq("painted w1!")
      claim, run = executed
      expect(claim[0]).to eq(:claim)
      expect(claim[1]).to match(%r{:\d+:\d+/PaintLaterJob/\h{8}-}) # host:pid:thread/job class/job id
      expect(claim[2]).to be_between(42, 45)
      expect(run).to eq(%w[w1 red])
      expect(Task::Task.find("walls", "w1")).to be_nil
    end

    it "completes a task handed to perform_later (inline and async adapters)" do
      DefaultPerformJob.perform_later(board("w1"))
      expect(executed).to eq([%w[w1 red]])
      expect(Task::Task.find("walls", "w1")).to be_nil

      ActiveJob::Base.queue_adapter = :async
      tasks = Array.new(5) { |i| board("a#{i}", "blue") }
      tasks.each { |t| DefaultPerformJob.perform_later(t) }
      deadline = Time.now + 20
      sleep 0.05 until Task::Task.all("walls").to_a.empty? || Time.now > deadline
      expect(Task::Task.all("walls").to_a).to eq([])
      expect(executed.sort).to eq(tasks.map { |t| [t.id, "blue"] })
    end

    it "records a failure with fail_attempt and re-raises it; the queue's retry makes the next attempt" do
      task = board("w1")
      expect { BrokenJob.perform_later(task) }.to raise_error(ArgumentError, "cannot paint w1")
      stored = Task::Task.find("walls", "w1")
      expect([stored.attempts, stored.last_error]).to eq([1, "ArgumentError: cannot paint w1"])
      expect(store.claims("walls").first[:owner]).to be_nil # given up: the retry need not wait

      # retry_on (3 attempts) on the async adapter: each attempt claims and fails again.
      ActiveJob::Base.queue_adapter = :async
      RetriedJob.perform_later(board("w2"))
      deadline = Time.now + 20
      sleep 0.05 until store.claims("walls").any? { |c| c[:id] == "w2" && c[:attempts] == 3 && c[:owner].nil? } || Time.now > deadline
      stored = Task::Task.find("walls", "w2")
      expect([stored.attempts, stored.last_error]).to eq([3, "RuntimeError: flaky w2"])
      expect(LOG.string).to include("Stopped retrying RetriedJob")
    end

    it "skips a task another worker holds, one already completed, and a dead one, saying why in the log" do
      held = board("held")
      held.claim(for: 60, owner: "another worker")
      expect(DefaultPerformJob.perform_now(held)).to be_nil
      expect(Task::Task.find("walls", "held")).not_to be_nil

      gone = board("gone")
      gone.complete
      expect(DefaultPerformJob.perform_now(gone)).to be_nil

      dead = board("dead")
      3.times { expect { BrokenJob.perform_now(dead) }.to raise_error(ArgumentError) }
      expect(DefaultPerformJob.perform_now(dead)).to be_nil
      expect(executed).to eq([])
      expect(LOG.string).to include("task walls/held: claimed by another worker; skipped")
      expect(LOG.string).to include("task walls/gone: no longer stored (already completed); nothing to do")
      expect(LOG.string).to include('task walls/dead: dead after 3 attempts (last error: "ArgumentError: cannot paint dead"); ' \
                                    "skipped until Task::Task#retry!")
    end

    it "gives the claim up, without recording a failure, when the process is being interrupted" do
      interrupted = Class.new(ActiveJob::Base) do
        include Task::Job

        def self.name
          "InterruptedJob"
        end

        def perform(_task)
          raise Interrupt
        end
      end
      task = board("w1")
      expect { interrupted.perform_now(task) }.to raise_error(Interrupt)
      expect(store.claims("walls").first).to include(owner: nil, attempts: 1, last_error: nil)
    end

    it "renews the claim every half lease while a perform longer than its lease runs (unless renew: false)" do
      answers = LongPaintJob.perform_now(board("long"))
      expect(answers.size).to be > 20
      expect(answers.uniq).to eq([false])
      expect(Task::Task.find("walls", "long")).to be_nil
      # The check can fail: without renewals another worker gets the task once the lease lapses.
      answers = UnrenewedLongPaintJob.perform_now(board("unrenewed"), 8)
      expect(answers.first).to be(false)
      expect(answers).to include(true)
      expect(UnrenewedLongPaintJob.task_claim_renew).to be(false)
      expect(LongPaintJob.task_claim_renew).to be(true)
      expect { Class.new(ActiveJob::Base) { include Task::Job; task_claim for: 5, renew: "yes" } }
        .to raise_error(ArgumentError, /task_claim renew: must be true or false, got "yes"/)
    end

    it "claims the task again when the store failed renewals for longer than the lease" do
      task = board("flaky")
      clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
      back = clock.call + 3.5 # a claim for: 1 lapses at most 3 s after it was won
      allow(task).to receive(:renew).and_wrap_original do |original, **options|
        raise Task::Error, "node timed out" if clock.call < back

        original.call(**options)
      end
      owner = Task::Job.run(task, for: 1, owner: "me") do
        sleep 0.05 until clock.call > back + 1 # the work
        Task::Task.interface.claim_info("walls", "flaky")[:owner]
      end
      expect(owner).to eq("me")
      expect(LOG.string).to include("renewing its claim failed (Task::Error: node timed out); trying again in 0.25 s",
                                    "task walls/flaky: its claim lapsed while perform ran; claimed again")
      expect(Task::Task.find("walls", "flaky")).to be_nil
    end

    it "refuses a lease that is not a positive number of seconds, naming the class" do
      expect { PaintLaterJob.task_claim(for: 0) }.to raise_error(ArgumentError, /PaintLaterJob: task_claim needs for: a number of seconds > 0, got 0/)
      expect(PaintLaterJob.task_claim_for).to eq(42)
      expect(DefaultPerformJob.task_claim_for).to eq(Task::Job::DEFAULT_LEASE)
    end
  end

  describe "Task::Job in Sidekiq (Sidekiq::Testing.inline!, strict arguments)" do
    around do |example|
      Sidekiq::Testing.inline! { example.run }
    end

    it "takes the task's as_json, or its list and id; strict arguments refuse the task object itself" do
      expect { SidekiqPaintJob.perform_async(board("w1")) }.to raise_error(ArgumentError, /native JSON types/)
      SidekiqPaintJob.perform_async(board("w1").as_json)
      SidekiqPaintJob.perform_async("walls", board("w2", "green").id)
      SidekiqPaintJob.perform_async("walls", "never-saved")
      expect(executed).to eq([%w[w1 red], %w[w2 green]])
      expect(Task::Task.all("walls").to_a).to eq([])
      expect(LOG.string).to include("task walls/never-saved: no longer stored (already completed)")
    end

    it "wraps a subclass's perform once" do
      expect(SidekiqChildJob.new.perform(board("w1").as_json)).to eq("child (claimed by SidekiqChildJob) painted w1")
      expect(Task::Task.find("walls", "w1")).to be_nil
      expect(store.claims("walls")).to eq([])
      expect(SidekiqChildJob.task_claim_for).to eq(30)
    end

    it "refuses arguments that are not a task, naming what it got" do
      expect { SidekiqPaintJob.new.perform(42) }
        .to raise_error(ArgumentError, "a Task::Job's first argument is a task, its as_json Hash, or a list and an id; got 42")
      expect { SidekiqPaintJob.new.perform("walls") }.to raise_error(ArgumentError, /list "walls" needs the task's id/)
    end
  end

  describe "Task::Recovery" do
    it "runs every task of the lists named nobody holds (ActiveJob flavour), skipping held ones" do
      board("w1")
      board("w2")
      board("d1", list: "doors")
      board("held").claim(for: 60, owner: "another worker")
      expect(RecoverBoardsJob.perform_now).to eq(3)
      expect(Task::Task.all("walls").map(&:id).to_a).to eq(["held"])
      expect(Task::Task.all("doors").to_a).to eq([])
      expect(LOG.string).to include("recovery of walls: 2 tasks run, 0 failed", "recovery of doors: 1 tasks run, 0 failed")
    end

    it "goes on past a failing task, records it, then raises naming each list/id (Sidekiq flavour)" do
      Array.new(5) { |i| board("w#{i}") }
      board("bad", "cracked")
      board("x1", list: "other")
      expect { SidekiqRecoverJob.new.perform }.to raise_error(Task::Recovery::Failed) { |e|
        expect(e.message).to eq("recovery: 1 task(s) failed, each recorded with fail_attempt: walls/bad (RuntimeError: cracked bad)")
        expect(e.failures.map { |f| [f[:task_list], f[:id]] }).to eq([%w[walls bad]])
      }
      expect(Task::Task.all("walls").map(&:id).to_a).to eq(["bad"])
      expect(Task::Task.find("walls", "bad").last_error).to eq("RuntimeError: cracked bad")
      expect(Task::Task.find("other", "x1")).not_to be_nil # not named

      expect(SidekiqRecoverJob.new.perform("other")).to eq(1) # lists given replace the class's
      expect(Task::Recovery.run(lists: ["walls"], for: 5) { |t| t.id }.to_h).to eq(ran: 1, by_list: { "walls" => 1 }, failures: [])
    end

    it "needs lists" do
      job = Class.new(ActiveJob::Base) do
        include Task::Recovery

        def self.name
          "NoListsJob"
        end
      end
      expect { job.perform_now }.to raise_error(ArgumentError, /NoListsJob: no lists to recover/)
      expect { Task::Recovery.run(lists: [], for: 5) }.to raise_error(ArgumentError, /at least one list/)
    end
  end
end
