# frozen_string_literal: true

# Events for what the adapters do, to Task.subscribe blocks and to ActiveSupport::Notifications.
RSpec.describe "instrumentation" do
  let(:list) { unique_list("events") }

  {
    memory: -> { Task::DataInterface::MemoryAdapter.new(page_size: 2) },
    cassandra: -> { cassandra_adapter(page_size: 2) }
  }.each do |store, make|
    it "reports saves, finds, completes, each page of a scan, bulk calls and claims, with their outcome (#{store})" do
      adapter = instance_exec(&make)
      use_adapter(adapter)
      events = []
      subscription = Task.subscribe { |e| events << e }
      begin
        tasks = (1..5).map { |i| FetchFile.create(task_list: list, id: i.to_s) }
        expect(Task::Task.find(list, "1")).to be_a(FetchFile)
        expect(Task::Task.find(list, "none")).to be_nil
        expect(Task::Task.all(list).count).to eq(5)
        adapter.store_many([FetchFile.build(task_list: list, id: "6"), FetchFile.build(task_list: list, id: "7")])
        adapter.delete_many([[list, "6"], [list, "7"]])
        expect(tasks[0].claim(for: 30, owner: "me")).to be(true)
        tasks[0].complete
        expect { Task::Task.find("", "1") }.to raise_error(ArgumentError)
      ensure
        Task.unsubscribe(subscription)
      end
      FetchFile.create(task_list: list, id: "after")

      by_name = events.group_by(&:name)
      expect(by_name["save.task"].map { |e| e.payload[:id] }).to eq(%w[1 2 3 4 5])
      expect(by_name["save.task"].first.payload).to eq(task_list: list, id: "1", attempts: 1)
      expect((by_name["save.task"] + by_name["complete.task"]).map { |e| e.payload[:attempts] }).to all(eq(1))
      expect(by_name["find.task"].map { |e| [e.payload[:id], e.payload[:found]] })
        .to eq([["1", true], ["none", false], ["1", nil]])
      expect(by_name["find.task"].last.payload[:error]).to be_a(ArgumentError)
      expect(by_name["all.task"].map { |e| e.payload[:count] }).to eq([2, 2, 1])
      expect(by_name["store_many.task"].map(&:payload)).to eq([{ count: 2 }])
      expect(by_name["delete_many.task"].map(&:payload)).to eq([{ count: 2 }])
      expect(by_name["claim.task"].map { |e| e.payload.slice(:id, :owner) }).to eq([{ id: "1", owner: "me" }])
      expect(by_name["complete.task"].map { |e| e.payload[:id] }).to eq(["1"])
      expect(events.map(&:duration)).to all(be >= 0)
      expect(events.map { |e| e.payload[:id] }).not_to include("after")
    end
  end

  it "counts the attempts a retried request took" do
    adapter = Task::DataInterface::CassandraAdapter.new(hosts: ["127.0.0.1"], port: 3, connect_timeout: 0.5,
                                                        retry_deadline: 0.5)
    events = []
    subscription = Task.subscribe { |e| events << e }
    expect { adapter.find(list, "1") }.to raise_error(Task::Error::NoHostAvailable)
    Task.unsubscribe(subscription)
    expect(events.map(&:name)).to eq(["find.task"])
    expect(events[0].payload[:attempts]).to be >= 2
    expect(events[0].payload[:error]).to be_a(Task::Error::NoHostAvailable)
  end

  it "goes to ActiveSupport::Notifications when it is loaded" do
    lib = File.expand_path("../lib", __dir__)
    script = <<~RUBY
      require "active_support"
      require "active_support/notifications"
      require "task"
      class Job; include Task::Task; end
      Task::Task.interface = Task::DataInterface::Interface.new(adapter: Task::DataInterface::MemoryAdapter.new(page_size: 2))
      seen = []
      ActiveSupport::Notifications.subscribe(/\\.task\\z/) { |name, start, finish, _id, payload| seen << [name, finish >= start, payload[:id] || payload[:count]] }
      3.times { |i| Job.create(task_list: "l", id: i.to_s) }
      Task::Task.find("l", "0")
      Task::Task.all("l").to_a
      Task::Task.find("l", "0").complete
      p seen
    RUBY
    out = IO.popen([RbConfig.ruby, "-I", lib, "-e", script], err: %i[child out], &:read)
    expect($?.success?).to be(true), out
    expect(eval(out.lines.last)).to eq([ # rubocop:disable Security/Eval
      ["save.task", true, "0"], ["save.task", true, "1"], ["save.task", true, "2"],
      ["find.task", true, "0"], ["all.task", true, 2], ["all.task", true, 1],
      ["find.task", true, "0"], ["complete.task", true, "0"]
    ])
  end

  it "costs a check when nobody listens, and a subscriber that raises does not break the call" do
    expect(Task::Instrumentation.listening?("save.task")).to be(false)
    subscription = Task.subscribe { |_e| raise "a broken subscriber" }
    found = nil
    expect do
      FetchFile.create(task_list: list, id: "x")
      found = Task::Task.find(list, "x")
    end.to output(/a Task.subscribe block raised RuntimeError: a broken subscriber/).to_stderr
    expect(found).to be_a(FetchFile)
  ensure
    Task.unsubscribe(subscription)
    expect { Task.subscribe }.to raise_error(ArgumentError, /needs a block/)
  end
end
