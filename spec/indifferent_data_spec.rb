# frozen_string_literal: true

require "spec_helper"
require "open3"
require "rbconfig"

# task_rb read every row through ActiveSupport's with_indifferent_access: a nested hash of a
# task read back answers Symbol and String keys alike, at every depth and inside arrays.
RSpec.describe "nested data read back" do
  let(:list) { unique_list("indifferent") }
  let(:data) do
    {
      opts: { retries: 3, "mode" => "fast", deep: { level: { n: 1 } } },
      items: [{ name: "a" }, [{ name: "b" }], 7],
      flag: true
    }
  end

  def expect_indifferent(task)
    d = task.data
    expect(d).to be_instance_of(Hash)
    expect(d.keys).to all(be_a(Symbol))
    expect(d[:opts][:retries]).to eq(3)
    expect(d[:opts]["retries"]).to eq(3)
    expect(d[:opts][:mode]).to eq("fast")
    expect(d[:opts][:deep][:level][:n]).to eq(1)
    expect(d[:opts]["deep"]["level"]["n"]).to eq(1)
    expect(d[:items][0][:name]).to eq("a")
    expect(d[:items][1][0][:name]).to eq("b")
    expect(d[:items][2]).to eq(7)
    expect(d[:opts].dig(:deep, :level, :n)).to eq(1)
    expect(d.dig(:opts, :deep, "level", :n)).to eq(1)
  end

  shared_examples "a store whose tasks read back indifferently" do
    before { use_adapter(adapter) }
    after { adapter.delete_list(list) }

    it "answers Symbol and String keys at every depth after find and all" do
      task = FetchFile.create(task_list: list, id: "n", **data)
      expect_indifferent(Task::Task.find(list, "n"))
      expect_indifferent(Task::Task.all(list).first)
      # What was written stays exactly what JSON.generate writes of the data.
      row = adapter.rows(list).first
      expect(row[:data]).to eq(JSON.generate(task.data))
      found = Task::Task.find(list, "n")
      expect(found.to_json).to eq(task.to_json)
      expect(found.as_json).to eq(task.as_json)
      expect(JSON.generate(found.data)).to eq(JSON.generate(task.data))
      found.save
      expect(adapter.rows(list).first[:data]).to eq(row[:data])
    end

    it "answers both after from_json and from_hash of what the gem wrote" do
      FetchFile.create(task_list: list, id: "n", **data)
      found = Task::Task.find(list, "n")
      expect_indifferent(Task::Task.from_json(found.to_json))
      expect_indifferent(Task::Task.from_hash(found.as_json))
      expect_indifferent(Task::Task.from_hash(JSON.parse(found.to_json, symbolize_names: true)))
      expect_indifferent(Task::Task.from_hash(found.as_hash))
    end
  end

  describe "on the memory store" do
    let(:adapter) { Task::DataInterface::MemoryAdapter.new }

    it_behaves_like "a store whose tasks read back indifferently"
  end

  describe "on SQLite" do
    let(:adapter) { sqlite_adapter }

    it_behaves_like "a store whose tasks read back indifferently"
  end

  describe "on Cassandra" do
    let(:adapter) { cassandra_adapter }

    it_behaves_like "a store whose tasks read back indifferently"
  end

  it "keeps what the caller gave for a task built in memory" do
    opts = { retries: 3 }
    task = FetchFile.build(task_list: list, id: "n", opts: opts)
    expect(task.data[:opts]).to equal(opts)
    task = FetchFile.new(task_list: list, id: "n", data: { opts: opts })
    expect(task.data[:opts]).to equal(opts)
    expect(task.data[:opts]["retries"]).to be_nil
  end

  it "reads back a row the original gem wrote with nested keys of both kinds" do
    adapter = Task::DataInterface::MemoryAdapter.new
    use_adapter(adapter)
    adapter.store_row(task_list: list, id: "old", type: "FetchFile",
                      data: '{"opts":{"retries":3,"list":[{"a":{"b":[1,{"c":2}]}}]}}')
    opts = Task::Task.find(list, "old").data[:opts]
    expect(opts[:list][0][:a][:b][1][:c]).to eq(2)
    expect(opts.fetch(:retries)).to eq(3)
  end

  describe "the nested hash" do
    let(:nested) do
      adapter = Task::DataInterface::MemoryAdapter.new
      use_adapter(adapter)
      FetchFile.create(task_list: list, id: "n", opts: { a: 1, "b" => 2, inner: { c: 3 } })
      Task::Task.find(list, "n").data[:opts]
    end

    it "is a Hash that answers the usual calls with either kind of key" do
      h = nested
      expect(h).to be_a(Hash)
      expect(h.fetch(:a)).to eq(1)
      expect(h.fetch("a")).to eq(1)
      expect(h.fetch(:zz, 9)).to eq(9)
      expect(h.fetch(:zz) { |k| k }).to eq("zz")
      expect { h.fetch(:zz) }.to raise_error(KeyError)
      expect(h.key?(:a) && h.has_key?(:b) && h.include?("a") && h.member?(:inner)).to be(true)
      expect(h.key?(:zz)).to be(false)
      expect(h.values_at(:a, "b", :zz)).to eq([1, 2, nil])
      expect(h.fetch_values(:a, "b")).to eq([1, 2])
      expect(h.dig(:inner, :c)).to eq(3)
      expect(h.slice(:a, "b")).to eq("a" => 1, "b" => 2)
      expect(h.except(:a, :inner)).to eq("b" => 2)
      expect(h.select { |k, _| k == "a" }[:a]).to eq(1)
      expect(h.reject { |k, _| k == "a" }[:b]).to eq(2)
      expect(h.compact[:inner][:c]).to eq(3)
      expect(h.transform_values(&:to_s)[:a]).to eq("1")
    end

    it "stores, deletes and merges with either kind of key, nested hashes too" do
      h = nested
      h[:d] = { e: 5 }
      expect(h["d"]["e"]).to eq(5)
      expect(h[:d][:e]).to eq(5)
      h.store(:f, [{ g: 6 }])
      expect(h[:f][0]["g"]).to eq(6)
      expect(h.delete(:a)).to eq(1)
      expect(h.key?("a")).to be(false)
      merged = h.merge(b: 20, z: 26)
      expect(merged[:b]).to eq(20)
      expect(merged["z"]).to eq(26)
      expect(h[:b]).to eq(2)
      h.update(x: { y: 1 })
      expect(h[:x][:y]).to eq(1)
      h.merge!("w" => 0)
      expect(h[:w]).to eq(0)
    end

    it "equals the plain hash of its String keys and gives that hash back" do
      h = nested
      plain = { "a" => 1, "b" => 2, "inner" => { "c" => 3 } }
      expect(h).to eq(plain)
      expect(plain).to eq(h)
      expect(h.to_h).to eq(plain)
      expect(h.to_h).to be_instance_of(Hash)
      expect(h.to_hash).to be_instance_of(Hash)
      expect(h.to_hash["inner"]).to be_instance_of(Hash)
      expect(h.to_h.keys).to all(be_a(String))
      expect(JSON.generate(h)).to eq(JSON.generate(plain))
      expect(h.to_json).to eq(plain.to_json)
      expect(JSON.pretty_generate("x" => h)).to eq(JSON.pretty_generate("x" => plain))
      expect(h.dup[:a]).to eq(1)
    end
  end

  it "gives ActiveSupport's HashWithIndifferentAccess when ActiveSupport is loaded" do
    script = <<~RUBY
      require "active_support"
      require "active_support/hash_with_indifferent_access"
      require "task"
      class Job
        include Task::Task
      end
      adapter = Task::DataInterface::MemoryAdapter.new
      Task::Task.interface = Task::DataInterface::Interface.new(adapter: adapter)
      task = Job.create(task_list: "l", id: "n", opts: { retries: 3, inner: [{ a: 1 }] })
      found = Task::Task.find("l", "n")
      opts = found.data[:opts]
      raise "not HWIA: \#{opts.class}" unless opts.instance_of?(ActiveSupport::HashWithIndifferentAccess)
      raise "inner not HWIA" unless opts[:inner][0].instance_of?(ActiveSupport::HashWithIndifferentAccess)
      raise "top level changed: \#{found.data.class}" unless found.data.instance_of?(Hash)
      raise "keys" unless opts[:retries] == 3 && opts["retries"] == 3 && opts[:inner][0][:a] == 1
      raise "json" unless found.to_json == task.to_json
      from_json = Task::Task.from_json(task.to_json).data[:opts]
      raise "from_json: \#{from_json.class}" unless from_json.instance_of?(ActiveSupport::HashWithIndifferentAccess)
      all = Task::Task.all("l").first.data[:opts]
      raise "all: \#{all.class}" unless all.instance_of?(ActiveSupport::HashWithIndifferentAccess)
      puts "ok"
    RUBY
    out, status = Open3.capture2e(RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-e", script)
    expect([out, status.success?]).to eq(["ok\n", true])
  end
end
