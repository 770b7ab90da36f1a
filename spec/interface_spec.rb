# frozen_string_literal: true

RSpec.describe Task::DataInterface::Interface do
  let(:memory_builder) { ->(_options) { Task::DataInterface::MemoryAdapter.new } }

  describe ".adapter_builder" do
    it "builds a CassandraAdapter from :hosts, :port and :keyspace by default" do
      adapter = described_class.new(hosts: ["127.0.0.2"], port: 9999, keyspace: "my_tasks").adapter
      expect(adapter).to be_a(Task::DataInterface::CassandraAdapter)
      expect(adapter.options).to include(hosts: ["127.0.0.2"], port: 9999, keyspace: "my_tasks")
      expect(described_class.new.adapter.options).to include(hosts: ["127.0.0.1"], port: 9042, keyspace: "tasks")
    end

    it "is inherited by subclasses and can be overridden per subclass" do
      parent = Class.new(described_class)
      child = Class.new(parent)
      sibling = Class.new(parent)
      parent.adapter_builder = memory_builder
      expect(child.adapter_builder).to equal(memory_builder)
      custom = ->(_) { HashAdapter.new }
      child.adapter_builder = custom
      expect(child.adapter_builder).to equal(custom)
      expect(parent.adapter_builder).to equal(memory_builder)
      expect(sibling.adapter_builder).to equal(memory_builder)
      expect(described_class.adapter_builder).to equal(described_class::DEFAULT_ADAPTER_BUILDER)
      expect(child.new.adapter).to be_a(HashAdapter)
    end

    it "is called with the options given to new" do
      seen = nil
      described_class.adapter_builder = ->(options) { seen = options; HashAdapter.new }
      described_class.new(port: 1234, hosts: ["my_host"])
      expect(seen).to eq(port: 1234, hosts: ["my_host"])
    end

    it "must respond to #call" do
      expect { described_class.adapter_builder = "nope" }.to raise_error(ArgumentError, /call/)
    end
  end

  describe ".new" do
    it "uses options[:adapter] when given, without calling the builder" do
      described_class.adapter_builder = ->(_) { raise "not called" }
      adapter = HashAdapter.new
      expect(described_class.new(adapter: adapter).adapter).to equal(adapter)
    end

    it "rejects an adapter missing one of store, all, find, delete" do
      expect { described_class.new(adapter: Object.new) }.to raise_error(ArgumentError, /does not respond to #store/)
    end
  end

  it "delegates store, all, find and delete to any Ruby adapter" do
    adapter = HashAdapter.new
    interface = described_class.new(adapter: adapter)
    task = FetchFile.build(task_list: "l", id: "1", filename: "f")
    interface.store(task)
    expect(interface.find("l", "1").filename).to eq("f")
    expect(interface.all("l").map(&:id)).to eq(["1"])
    interface.delete("l", "1")
    expect(interface.find("l", "1")).to be_nil
  end

  it "gives Task::Task.all an Enumerator::Lazy whatever the adapter returns" do
    use_adapter(HashAdapter.new)
    FetchFile.create(task_list: "l", id: "1")
    expect(Task::Task.all("l")).to be_a(Enumerator::Lazy)
    expect(Task::Task.all("l").map(&:id).to_a).to eq(["1"])
  end
end
