# frozen_string_literal: true

# Calls whose arguments were taken carelessly: misspelt options accepted and ignored, values
# coerced or truncated into something else, errors raised from the wrong place or with the
# wrong class. Each group runs against both stores where the store is involved.
RSpec.describe "Careless calls" do
  # Defines the examples of `block` once for each store, with `adapter` (made current) and a
  # fresh `list`.
  def self.on_each_store(&block)
    { "MemoryAdapter" => :memory, "CassandraAdapter" => :cassandra }.each do |name, kind|
      context "on the #{name}" do
        let(:adapter) { kind == :memory ? Task::DataInterface::MemoryAdapter.new : cassandra_adapter }
        let(:list) { unique_list("careless") }

        before { use_adapter(adapter) }

        class_exec(&block)
      end
    end
  end

  def stored(task_list)
    adapter.rows(task_list).map { |r| [r[:id], r[:type], r[:data]] }.to_a
  end

  describe "unknown keyword arguments" do
    on_each_store do
      it "are refused by store_many, naming them and the accepted ones, before anything is stored" do
        tasks = [FetchFile.build(task_list: list, id: "a"), FetchFile.build(task_list: list, id: "b")]
        expect { adapter.store_many(tasks, concurency: 1) }
          .to raise_error(ArgumentError, /unknown store_many option :concurency \(accepted: :concurrency\)/)
        expect { adapter.store_many(tasks, concurency: 1, "bogus" => 2) }
          .to raise_error(ArgumentError, /unknown store_many options :concurency, "bogus" \(accepted: :concurrency\)/)
        expect(stored(list)).to eq([])
        expect(adapter.store_many(tasks, concurrency: 1)).to eq(2)
      end

      it "are refused by delete_many before anything is deleted" do
        FetchFile.create(task_list: list, id: "a", filename: "kept")
        expect { adapter.delete_many([[list, "a"]], bogus: 1) }
          .to raise_error(ArgumentError, /unknown delete_many option :bogus \(accepted: :concurrency\)/)
        expect(Task::Task.find(list, "a").filename).to eq("kept")
      end

      it "are refused by store_row, which writes nothing" do
        row = { task_list: list, id: "r", type: "FetchFile", data: "{}" }
        expect { adapter.store_row(**row, extra: 1) }
          .to raise_error(ArgumentError, /unknown store_row option :extra \(accepted: :task_list, :id, :type, :data\)/)
        expect(stored(list)).to eq([])
      end
    end

    it "are refused by create_schema, which creates nothing" do
      keyspace = "task_spec_#{SecureRandom.hex(4)}"
      adapter = cassandra_adapter(keyspace: keyspace)
      expect { adapter.create_schema(replicaton_factor: 3) }
        .to raise_error(ArgumentError, /unknown create_schema option :replicaton_factor \(accepted: :replication_factor\)/)
      expect { adapter.find("l", "1") }.to raise_error(Task::Error::QueryRejected, /#{keyspace}/)
    end

    it "are refused by MemoryAdapter.new and CassandraAdapter.new, naming every one of them" do
      expect { Task::DataInterface::MemoryAdapter.new(pagesize: 3) }
        .to raise_error(ArgumentError, /unknown MemoryAdapter option :pagesize \(accepted: :page_size\)/)
      expect { Task::DataInterface::CassandraAdapter.new(hots: ["x"], prot: 1) }
        .to raise_error(ArgumentError, /unknown CassandraAdapter options :hots, :prot \(accepted: :hosts, :port, :keyspace, /)
    end

    it "are refused by the default adapter builder of Interface.new, which still takes :adapter" do
      expect { Task::DataInterface::Interface.new(hots: ["127.0.0.2"], keyspace: "my_tasks") }
        .to raise_error(ArgumentError, /unknown Interface option :hots \(accepted: :adapter, :hosts, :port, :keyspace, /)
      adapter = Task::DataInterface::Interface.new(adapter: nil, hosts: ["127.0.0.2"], port: 9999).adapter
      expect(adapter.options).to include(hosts: ["127.0.0.2"], port: 9999)
    end
  end
end
