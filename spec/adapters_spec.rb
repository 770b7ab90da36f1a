# frozen_string_literal: true

RSpec.describe Task::DataInterface::MemoryAdapter do
  it_behaves_like "a task store" do
    let(:adapter) { described_class.new }
    let(:page_size) { 5 }
    let(:paged_adapter) { described_class.new(page_size: page_size) }
  end

  it "rejects a page size below 1" do
    expect { described_class.new(page_size: 0) }.to raise_error(ArgumentError, /page_size/)
  end
end

RSpec.describe Task::DataInterface::CassandraAdapter do
  it_behaves_like "a task store" do
    let(:adapter) { cassandra_adapter }
    let(:page_size) { 7 }
    let(:paged_adapter) { cassandra_adapter(page_size: page_size) }
  end

  it "returns a list of 25,000 tasks whole from all: no duplicates, in id order" do
    list = unique_list("big")
    adapter = cassandra_adapter(page_size: 1000)
    ids = (0...25_000).map { |i| format("%06d", i) }
    tasks = ids.shuffle(random: Random.new(7)).map { |id| FetchFile.build(task_list: list, id: id, n: id.to_i) }
    expect(adapter.store_many(tasks, concurrency: 64)).to eq(25_000)
    use_adapter(adapter)
    seen = Task::Task.all(list).map(&:id).to_a
    expect(seen.size).to eq(25_000)
    expect(seen.uniq.size).to eq(25_000)
    expect(seen).to eq(ids)
    adapter.delete_list(list)
    expect(Task::Task.all(list).first(1)).to eq([])
  end

  describe "options" do
    it "defaults to the original's connection settings" do
      options = described_class.new.options
      expect(options).to include(hosts: ["127.0.0.1"], port: 9042, keyspace: "tasks", tasks_table_name: :tasks,
                                 consistency: :local_quorum)
    end

    it "rejects unknown options and bad identifiers, naming them" do
      expect { described_class.new(hots: ["x"]) }.to raise_error(ArgumentError, /unknown CassandraAdapter option :hots/)
      expect { described_class.new(keyspace: "tasks; DROP") }.to raise_error(ArgumentError, /keyspace name "tasks; DROP"/)
      expect { described_class.new(tasks_table_name: "1x") }.to raise_error(ArgumentError, /table name "1x"/)
      expect { described_class.new(consistency: :most) }.to raise_error(ArgumentError, /consistency "most"/)
    end
  end

  it "reads and writes at the configured consistency, and says when the cluster cannot meet it" do
    # Replication factor 2 on a one-node cluster: one replica can answer, a quorum (2) cannot.
    options = { keyspace: "task_spec_rf2", retry_deadline: 0.5 }
    cassandra_adapter(**options).create_schema(replication_factor: 2)
    list = unique_list
    one = cassandra_adapter(**options, consistency: :one)
    use_adapter(one)
    FetchFile.create(task_list: list, id: "1")
    expect(Task::Task.find(list, "1")).to be_a(FetchFile)
    quorum = cassandra_adapter(**options) # the default, LOCAL_QUORUM
    expect { quorum.find(list, "1") }.to raise_error(Task::Error::Unavailable, /finding task "1".*task_spec_rf2\.tasks/)
    use_adapter(quorum)
    expect { FetchFile.create(task_list: list, id: "2") }.to raise_error(Task::Error::Unavailable, /saving task "2"/)
  end

  it "connects through any contact host that answers, and keeps to the local datacenter" do
    list = unique_list
    # 127.0.0.2:1 refuses connections; the driver uses the host that answers.
    several = cassandra_adapter(hosts: ["127.0.0.2:1", "#{cassandra_options[:hosts].first}:#{cassandra_options[:port]}"])
    use_adapter(several)
    FetchFile.create(task_list: list, id: "1")
    expect(Task::Task.find(list, "1")).to be_a(FetchFile)
    # bin/cassandra's node is in SimpleSnitch's "datacenter1".
    expect(cassandra_adapter(local_datacenter: "datacenter1").find(list, "1")).to be_a(FetchFile)
    elsewhere = cassandra_adapter(local_datacenter: "dc-on-the-moon", retry_deadline: 0.2)
    expect { elsewhere.find(list, "1") }.to raise_error(Task::Error::NoHostAvailable, /finding task "1"/)
  end

  it "uses tasks_table_name for every statement, delete included" do
    list = unique_list
    main = cassandra_adapter
    other = cassandra_adapter(tasks_table_name: :tasks_other)
    use_adapter(main)
    FetchFile.create(task_list: list, id: "1", filename: "main")
    use_adapter(other)
    FetchFile.create(task_list: list, id: "1", filename: "other")
    Task::Task.find(list, "1").complete
    expect(Task::Task.find(list, "1")).to be_nil
    use_adapter(main)
    expect(Task::Task.find(list, "1").filename).to eq("main")
  end

  it "says which table is missing and how to create it" do
    adapter = cassandra_adapter(tasks_table_name: :no_such_table)
    expect { adapter.find("l", "1") }.to raise_error(Task::Error::QueryRejected, /task_spec\.no_such_table.*create_schema/)
  end

  it "creates its keyspace and table with create_schema" do
    keyspace = "task_spec_#{SecureRandom.hex(4)}"
    adapter = described_class.new(**cassandra_options, keyspace: keyspace)
    expect { adapter.find("l", "1") }.to raise_error(Task::Error::QueryRejected, /#{keyspace}/)
    adapter.create_schema(replication_factor: 1)
    use_adapter(adapter)
    FetchFile.create(task_list: "l", id: "1")
    expect(Task::Task.find("l", "1")).to be_a(FetchFile)
  end

  it "creates a keyspace with replicas per datacenter (NetworkTopologyStrategy) from a replication map" do
    keyspace = "task_spec_#{SecureRandom.hex(4)}"
    adapter = described_class.new(**cassandra_options, keyspace: keyspace)
    # The test node's datacenter (SimpleSnitch) is datacenter1; a map naming one the cluster
    # does not have is refused by the node, and nothing is created.
    expect { adapter.create_schema(replication: { "dc9" => 1 }) }
      .to raise_error(Task::Error::QueryRejected, /dc9/)
    expect { adapter.find("l", "1") }.to raise_error(Task::Error::QueryRejected, /#{keyspace}/)
    adapter.create_schema(replication: { datacenter1: 1 }, gc_grace_seconds: 600)
    adapter.store(FetchFile.build(task_list: "l", id: "1"))
    expect(adapter.find("l", "1")).to be_a(FetchFile)
    expect(adapter.tune_table(gc_grace_seconds: 600).first)
      .to start_with("ALTER TABLE #{keyspace}.tasks WITH gc_grace_seconds = 600 AND compaction")
  end

  it "shows where it points in inspect, never the password" do
    adapter = described_class.new(hosts: ["127.0.0.1", "127.0.0.2:9043"], keyspace: "inspected", username: "app",
                                  password: "s3cret-pw", consistency: :quorum)
    expect(adapter.inspect).to eq("#<Task::DataInterface::CassandraAdapter hosts=127.0.0.1:9042,127.0.0.2:9043 " \
                                  "keyspace=inspected table=tasks consistency=quorum user=app>")
    expect(adapter.inspect).not_to include("s3cret")
  end

  it "raises NoHostAvailable naming the host when nothing answers" do
    adapter = described_class.new(hosts: ["127.0.0.1"], port: 1, connect_timeout: 1, retry_deadline: 0.2)
    expect { adapter.find("l", "1") }.to raise_error(Task::Error::NoHostAvailable, /127\.0\.0\.1:1/)
  end

  it "shares one driver session among every adapter and interface with the same connection" do
    list = unique_list
    adapters = 3.times.map { cassandra_adapter }
    adapters.each { |a| a.find(list, "x") }
    cassandra_adapter(tasks_table_name: :tasks_other).find(list, "x")
    before = described_class.open_sessions
    Task::DataInterface::Interface.adapter_builder = ->(_) { cassandra_adapter }
    Task::Task.interface = nil
    50.times { |i| FetchFile.create(task_list: list, id: i.to_s).complete }
    expect(Task::Task.interface).to equal(Task::Task.interface)
    expect(described_class.open_sessions).to eq(before)
  end
end

RSpec.describe Task::DataInterface::SqliteAdapter do
  it_behaves_like "a task store" do
    let(:sqlite_path) { SqliteFiles.fresh_path }
    let(:adapter) { sqlite_adapter(path: sqlite_path) }
    let(:page_size) { 5 }
    let(:paged_adapter) { sqlite_adapter(path: sqlite_path, page_size: page_size) }
  end
end
