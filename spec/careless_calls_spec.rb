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
          .to raise_error(ArgumentError, /unknown store_many option :concurency \(accepted: :concurrency, :batched\)/)
        expect { adapter.store_many(tasks, concurency: 1, "bogus" => 2) }
          .to raise_error(ArgumentError, /unknown store_many options :concurency, "bogus" \(accepted: :concurrency, :batched\)/)
        expect(stored(list)).to eq([])
        expect(adapter.store_many(tasks, concurrency: 1)).to eq(2)
      end

      it "are refused by delete_many before anything is deleted" do
        FetchFile.create(task_list: list, id: "a", filename: "kept")
        expect { adapter.delete_many([[list, "a"]], bogus: 1) }
          .to raise_error(ArgumentError, /unknown delete_many option :bogus \(accepted: :concurrency, :batched\)/)
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
        .to raise_error(ArgumentError, /unknown create_schema option :replicaton_factor \(accepted: :replication_factor, :claims, :gc_grace_seconds, :replication\)/)
      expect { adapter.find("l", "1") }.to raise_error(Task::Error::QueryRejected, /#{keyspace}/)
    end

    it "are refused by MemoryAdapter.new and CassandraAdapter.new, naming every one of them" do
      expect { Task::DataInterface::MemoryAdapter.new(pagesize: 3) }
        .to raise_error(ArgumentError, /unknown MemoryAdapter option :pagesize \(accepted: :page_size, :max_attempts, :default_ttl\)/)
      expect { Task::DataInterface::CassandraAdapter.new(hots: ["x"], prot: 1) }
        .to raise_error(ArgumentError, /unknown CassandraAdapter options :hots, :prot \(accepted: :logger, :hosts, :port, :keyspace, /)
    end

    it "include task_rb's client:, refused with the way to migrate" do
      expect { Task::DataInterface::CassandraAdapter.new(client: Object.new) }
        .to raise_error(ArgumentError, /CassandraAdapter takes no client: .*hosts:, port:, keyspace:.*Migrating from task_rb/)
      expect { Task::DataInterface::Interface.new(client: Object.new) }
        .to raise_error(ArgumentError, /Interface takes no client: /)
    end

    it "are refused by the default adapter builder of Interface.new, which still takes :adapter" do
      expect { Task::DataInterface::Interface.new(hots: ["127.0.0.2"], keyspace: "my_tasks") }
        .to raise_error(ArgumentError, /unknown Interface option :hots \(accepted: :adapter, :hosts, :port, :keyspace, /)
      adapter = Task::DataInterface::Interface.new(adapter: nil, hosts: ["127.0.0.2"], port: 9999).adapter
      expect(adapter.options).to include(hosts: ["127.0.0.2"], port: 9999)
    end
  end

  describe "ids and task lists" do
    # What every call refuses, and how the message shows the value given.
    let(:refused) do
      bad_utf8 = "\xff".dup.force_encoding("UTF-8")
      [[nil, "nil"], [[1, 2], "Array"], [{ a: 1 }, "Hash"], [Object.new, "Object"], ["", '""'], [true, "TrueClass"],
       [bad_utf8, "not valid UTF-8"]]
    end

    def refusal(name, shown)
      if shown == "not valid UTF-8"
        /task #{name} must be valid UTF-8, got "\\xFF"/
      else
        /task #{name} must be a non-empty String, Symbol, Integer or Float; got #{Regexp.escape(shown)}/
      end
    end

    on_each_store do
      it "are refused in every call when not a String, Symbol, Integer or Float, and nothing is changed" do
        # Rows whose ids and list are what to_s would make of the refused values.
        lookalikes = ["[1, 2]", { a: 1 }.to_s, "true", ""].reject(&:empty?)
        lookalikes.each { |id| FetchFile.create(task_list: list, id: id, filename: "keep #{id}") }
        FetchFile.create(task_list: [list].to_s, id: "x", filename: "keep list")
        before = stored(list)
        refused.each do |value, shown|
          id_error = refusal("id", shown)
          list_error = refusal("task_list", shown)
          expect { FetchFile.new(task_list: list, id: value).save }.to raise_error(ArgumentError, id_error)
          expect { FetchFile.new(task_list: list, id: value).complete }.to raise_error(ArgumentError, id_error)
          expect { Task::Task.find(list, value) }.to raise_error(ArgumentError, id_error)
          expect { adapter.delete(list, value) }.to raise_error(ArgumentError, id_error)
          expect { adapter.store_many([FetchFile.new(task_list: list, id: value)]) }.to raise_error(ArgumentError, id_error)
          expect { adapter.delete_many([[list, value]]) }.to raise_error(ArgumentError, id_error)
          expect { adapter.delete_many([FetchFile.new(task_list: list, id: value)]) }.to raise_error(ArgumentError, id_error)
          expect { adapter.store_row(task_list: list, id: value, type: "FetchFile", data: "{}") }
            .to raise_error(ArgumentError, id_error)
          expect { FetchFile.new(task_list: value, id: "x").save }.to raise_error(ArgumentError, list_error)
          expect { FetchFile.new(task_list: value, id: "x").complete }.to raise_error(ArgumentError, list_error)
          expect { Task::Task.find(value, "x") }.to raise_error(ArgumentError, list_error)
          expect { Task::Task.all(value) }.to raise_error(ArgumentError, list_error)
          expect { adapter.rows(value) }.to raise_error(ArgumentError, list_error)
          expect { adapter.delete_list(value) }.to raise_error(ArgumentError, list_error)
          expect { adapter.delete_many([[value, "x"]]) }.to raise_error(ArgumentError, list_error)
        end
        expect { adapter.delete_many([[list, "[1, 2]"], [list, [1, 2]]]) }.to raise_error(ArgumentError, /Array/)
        expect { adapter.store_many([FetchFile.build(task_list: list, id: "new"), FetchFile.new(task_list: list, id: [1])]) }
          .to raise_error(ArgumentError, /Array/)
        expect(stored(list)).to eq(before)
        expect(stored([list].to_s).map(&:first)).to eq(["x"])
      end

      it "are taken as their to_s when Symbols, Integers or Floats, the same in every call" do
        FetchFile.new(task_list: list.to_sym, id: 42, data: { filename: "int" }).save
        FetchFile.create(task_list: list, id: 1.5, filename: "float")
        adapter.store_many([FetchFile.new(task_list: list.to_sym, id: :sym)])
        adapter.store_row(task_list: list.to_sym, id: 7, type: "FetchFile", data: "{}")
        expect(stored(list).map(&:first)).to eq(%w[1.5 42 7 sym])
        expect(Task::Task.find(list.to_sym, 42).id).to eq("42")
        expect(Task::Task.find(list, 1.5).filename).to eq("float")
        expect(Task::Task.all(list.to_sym).map(&:id).to_a).to eq(%w[1.5 42 7 sym])
        expect(adapter.rows(list.to_sym).count).to eq(4)
        FetchFile.new(task_list: list.to_sym, id: 42).complete
        adapter.delete(list, :sym)
        expect(adapter.delete_many([[list.to_sym, 1.5]])).to eq(1)
        expect(stored(list).map(&:first)).to eq(%w[7])
        adapter.delete_list(list.to_sym)
        expect(stored(list)).to eq([])
      end
    end
  end

  describe "values whose to_json takes JSON's generator state" do
    # As JSON's own to_json methods are written: the state is required, and used.
    let(:needs_state) do
      Class.new do
        def to_json(state)
          { "kind" => "needs state", "depth" => state.depth }.to_json(state)
        end
      end
    end
    let(:splat) do
      Class.new do
        def to_json(*args)
          [args.size, args[0].class.name, args[0].depth].to_json(*args)
        end
      end
    end
    let(:optional) do
      Class.new do
        def to_json(state = nil)
          state ? '"given a state"' : '"given none"'
        end
      end
    end
    let(:legacy) do
      Class.new do
        def to_json
          '{"legacy":true}'
        end
      end
    end

    on_each_store do
      it "are stored as JSON.generate writes them, at every depth" do
        data = { top: needs_state.new, nested: [{ "deep" => needs_state.new }, splat.new], splat: splat.new,
                 optional: optional.new }
        FetchFile.create(task_list: list, id: "j", **data)
        expect(stored(list)).to eq([["j", "FetchFile", JSON.generate(data)]])
        expect(JSON.parse(stored(list)[0][2])["nested"][0]["deep"]).to eq("kind" => "needs state", "depth" => 3)
      end

      it "still stores a legacy to_json that takes no argument, as it writes itself" do
        FetchFile.create(task_list: list, id: "l", old: legacy.new, new: needs_state.new)
        expect(stored(list)).to eq([["l", "FetchFile", %({"old":{"legacy":true},"new":{"kind":"needs state","depth":1}})]])
      end

      it "lets an error raised by to_json through, and keeps the stored version" do
        FetchFile.create(task_list: list, id: "e", filename: "kept")
        failing = Class.new do
          def to_json(_state)
            raise ArgumentError, "cannot write this one"
          end
        end
        expect { FetchFile.create(task_list: list, id: "e", bad: failing.new) }
          .to raise_error(ArgumentError, "cannot write this one")
        expect(Task::Task.find(list, "e").data).to eq(filename: "kept")
      end
    end
  end

  describe "a data key that is not valid UTF-8" do
    let(:bad) { "\xff".dup.force_encoding("UTF-8") }

    on_each_store do
      it "is accepted by new, build and data=, and refused by save as BadData naming the task, at every depth" do
        FetchFile.create(task_list: list, id: "k", filename: "kept")
        expect { FetchFile.new(task_list: list, id: "k", data: { bad => 1 }) }.not_to raise_error
        expect { FetchFile.build(task_list: list, id: "k", bad => 1) }.not_to raise_error
        expect { FetchFile.new(task_list: list, id: "k").data = { bad => 1 } }.not_to raise_error
        tasks = [
          [FetchFile.new(task_list: list, id: "k", data: { bad => 1 }), "cannot store data: key"],
          [FetchFile.build(task_list: list, id: "k", bad => 1), "cannot store data: key"],
          [FetchFile.new(task_list: list, id: "k", data: { n: { bad => 1 } }), "cannot store data at data\\[:n\\]: key"],
          [FetchFile.new(task_list: list, id: "k", data: { n: [{ bad => 1 }] }), "cannot store data at data\\[:n\\]\\[0\\]: key"]
        ]
        tasks.each do |task, where|
          message = /task "k" of list "#{list}": #{where} "\\xFF" is not valid UTF-8/
          expect { task.save }.to raise_error(Task::Error::BadData, message)
          expect { adapter.store_many([task]) }.to raise_error(Task::Error::BadData, message)
        end
        expect(stored(list)).to eq([["k", "FetchFile", '{"filename":"kept"}']])
      end
    end
  end

  describe "keys over Cassandra's 65,535-byte limit" do
    let(:long) { "x" * 70_000 }

    def refused_briefly(pattern)
      raise_error(ArgumentError) do |e|
        expect(e.message).to match(pattern)
        expect(e.message.bytesize).to be < 300
      end
    end

    on_each_store do
      it "are refused before any request, with a short message, and nothing is changed" do
        FetchFile.create(task_list: list, id: "keep")
        id_error = /task id is 70000 bytes long; Cassandra holds at most 65535 \(it starts "x{20}…"\)/
        list_error = /task task_list is 70000 bytes long; Cassandra holds at most 65535 \(it starts "x{20}…"\)/
        expect { FetchFile.create(task_list: list, id: long) }.to refused_briefly(id_error)
        expect { Task::Task.find(list, long) }.to refused_briefly(id_error)
        expect { FetchFile.new(task_list: list, id: long).complete }.to refused_briefly(id_error)
        expect { adapter.delete(list, long) }.to refused_briefly(id_error)
        expect { adapter.store_many([FetchFile.build(task_list: list, id: "a"), FetchFile.build(task_list: list, id: long)]) }
          .to refused_briefly(id_error)
        expect { adapter.delete_many([[list, "keep"], [list, long]]) }.to refused_briefly(id_error)
        expect { adapter.store_row(task_list: list, id: long, type: "FetchFile", data: "{}") }.to refused_briefly(id_error)
        expect { FetchFile.create(task_list: long, id: "keep") }.to refused_briefly(list_error)
        expect { Task::Task.find(long, "keep") }.to refused_briefly(list_error)
        expect { Task::Task.all(long) }.to refused_briefly(list_error)
        expect { adapter.rows(long) }.to refused_briefly(list_error)
        expect { adapter.delete_list(long) }.to refused_briefly(list_error)
        expect(stored(list).map(&:first)).to eq(["keep"])
      end

      it "count the id and the type together, as Cassandra's clustering key does" do
        together = /task id and type are 80000 bytes together; Cassandra holds at most 65535 \(id starts "i{20}…", type "T{20}…"\)/
        expect { adapter.store_row(task_list: list, id: "i" * 40_000, type: "T" * 40_000, data: "{}") }
          .to refused_briefly(together)
        expect { adapter.store_row(task_list: list, id: "i", type: "T" * 70_000, data: "{}") }
          .to refused_briefly(/task id and type are 70001 bytes together/)
        expect { FetchFile.create(task_list: list, id: "i" * 65_535) }.to refused_briefly(/65544 bytes together/)
        expect { adapter.store_many([FetchFile.build(task_list: list, id: "i" * 65_535)]) }.to refused_briefly(/65544 bytes/)
        expect(stored(list)).to eq([])
        # The longest id a FetchFile can have: 65,535 bytes with its 9-byte type.
        longest = "é" * 32_763
        expect(longest.bytesize + "FetchFile".bytesize).to eq(65_535)
        FetchFile.create(task_list: list, id: longest)
        expect(Task::Task.find(list, longest).id).to eq(longest)
        longest_list = "é" * 32_767 + "l"
        FetchFile.create(task_list: longest_list, id: "1")
        expect(Task::Task.all(longest_list).map(&:id).to_a).to eq(["1"])
      end
    end
  end

  describe "option values" do
    let(:cassandra) { Task::DataInterface::CassandraAdapter }
    let(:memory) { Task::DataInterface::MemoryAdapter }

    it "take an Integer where a count is meant, never a Float truncated or a String" do
      expect { cassandra.new(port: 9350.7) }.to raise_error(ArgumentError, /port must be an Integer from 1 to 65535, got 9350.7/)
      [0, 65_536, "9042", 2**70].each do |port|
        expect { cassandra.new(port: port) }.to raise_error(ArgumentError, /port must be an Integer from 1 to 65535, got #{Regexp.escape(port.inspect)}/)
      end
      expect(cassandra.new(port: 9043).options[:port]).to eq(9043)
      expect { cassandra.new(page_size: 1.5) }
        .to raise_error(ArgumentError, /page_size must be an Integer from 1 to 2147483647, got 1.5/)
      expect { cassandra.new(page_size: 2**31) }.to raise_error(ArgumentError, /page_size must be an Integer/)
      expect(cassandra.new(page_size: 10).options[:page_size]).to eq(10)
      [1.5, 0, "10"].each do |page_size|
        expect { memory.new(page_size: page_size) }
          .to raise_error(ArgumentError, /page_size must be an Integer of at least 1, got #{Regexp.escape(page_size.inspect)}/)
      end
    end

    on_each_store do
      it "refuse a concurrency that is not an Integer from 1 to 4096, before anything is written" do
        FetchFile.create(task_list: list, id: "keep")
        tasks = [FetchFile.build(task_list: list, id: "new")]
        [1.5, 0, 4097, "8", nil].each do |concurrency|
          message = /concurrency must be an Integer from 1 to 4096, got #{Regexp.escape(concurrency.inspect)}/
          expect { adapter.store_many(tasks, concurrency: concurrency) }.to raise_error(ArgumentError, message)
          expect { adapter.delete_many([[list, "keep"]], concurrency: concurrency) }.to raise_error(ArgumentError, message)
        end
        expect(stored(list).map(&:first)).to eq(["keep"])
        expect(adapter.store_many(tasks, concurrency: 2)).to eq(1)
      end
    end

    it "refuse a replication that is not positive Integers, or a grace period below 0, creating nothing" do
      keyspace = "task_spec_#{SecureRandom.hex(4)}"
      adapter = cassandra_adapter(keyspace: keyspace)
      [1.5, 0, "3", 2**31].each do |rf|
        expect { adapter.create_schema(replication_factor: rf) }
          .to raise_error(ArgumentError, /replication_factor must be an Integer from 1 to 2147483647, got #{Regexp.escape(rf.inspect)}/)
      end
      {
        [] => /replication must be a Hash of datacenter name => replicas, got \[\]/,
        {} => /replication must name at least one datacenter/,
        { "dc1" => 0 } => /replication\["dc1"\] must be an Integer from 1/,
        { "dc1" => "2" } => /replication\["dc1"\] must be an Integer from 1 to 2147483647, got "2"/,
        { 1 => 2 } => /datacenter name must be a String or Symbol, got 1/,
        { "" => 2 } => /datacenter name "" must be non-empty/,
        { "dc1" => 1, dc1: 2 } => /names datacenter "dc1" twice/
      }.each do |replication, message|
        expect { adapter.create_schema(replication: replication) }.to raise_error(ArgumentError, message)
      end
      expect { adapter.create_schema(replication_factor: 1, replication: { "dc1" => 1 }) }
        .to raise_error(ArgumentError, /replication_factor: .*or replication: .*not both/)
      [-1, 1.5, "60", nil].each do |grace|
        expect { adapter.create_schema(gc_grace_seconds: grace) }
          .to raise_error(ArgumentError, /gc_grace_seconds must be an Integer from 0 to 2147483647, got #{Regexp.escape(grace.inspect)}/)
        expect { adapter.tune_table(gc_grace_seconds: grace) }.to raise_error(ArgumentError, /gc_grace_seconds/)
      end
      expect { adapter.create_schema(claims: "no") }.to raise_error(ArgumentError, /claims must be true or false, got "no"/)
      expect { adapter.find("l", "1") }.to raise_error(Task::Error::QueryRejected, /#{keyspace}/)
    end

    it "take only true, false or nil for tls" do
      ["false", "true", 1, 0, :false].each do |tls|
        expect { cassandra.new(tls: tls) }.to raise_error(ArgumentError, /tls must be true, false or nil, got #{Regexp.escape(tls.inspect)}/)
      end
      expect(cassandra.new(tls: false).options[:tls]).to be(false)
      expect(cassandra.new(tls: nil).options[:tls]).to be(false)
      expect(cassandra.new(tls: true).options[:tls]).to be(true)
    end

    it "refuse a host that is not host, host:port, an IPv6 address or [IPv6]:port, when the adapter is made" do
      {
        "127.0.0.1:abc" => /host "127.0.0.1:abc": port "abc" is not a number from 1 to 65535/,
        "host:0" => /host "host:0": port "0" is not a number from 1 to 65535/,
        "host:99999" => /host "host:99999": port "99999" is not a number from 1 to 65535/,
        "host:" => /host "host:": port "" is not a number from 1 to 65535/,
        "" => /host "" is empty/,
        " " => /host " " is empty/,
        "db 1" => /host "db 1": "db 1" is not a host name or IP address/,
        "1:2:3" => /host "1:2:3": "1:2" is not a host name or IP address/,
        "[::1" => /host "\[::1": no closing \]/,
        "[::1]:abc" => /host "\[::1\]:abc": port "abc" is not a number/,
        "[::1]9042" => /host "\[::1\]9042": only :port may follow \]/,
        "[db1]:9042" => /host "\[db1\]:9042": "db1" is not an IPv6 address/
      }.each do |host, message|
        expect { cassandra.new(hosts: [host]) }.to raise_error(ArgumentError, message)
      end
      expect { cassandra.new(hosts: "127.0.0.1, 127.0.0.2:abc") }.to raise_error(ArgumentError, /host "127.0.0.2:abc"/)
      expect { Task::DataInterface::Interface.new(hosts: ["127.0.0.1:abc"]) }.to raise_error(ArgumentError, /port "abc"/)
      good = ["db-1.example.com", "host_2:9043", "10.0.0.1", "10.0.0.1:65535", "::1", "[::1]", "[::1]:9043", "fe80::1"]
      expect(cassandra.new(hosts: good).options[:hosts]).to eq(good)
    end

    it "refuse a reserved CQL keyword as keyspace or table name, and take the non-reserved ones" do
      %w[select SELECT Table keyspace where is materialized replace].each do |word|
        expect { cassandra.new(keyspace: word) }
          .to raise_error(ArgumentError, /keyspace name "#{word}" is a reserved CQL keyword/)
        expect { cassandra.new(tasks_table_name: word.to_sym) }
          .to raise_error(ArgumentError, /table name "#{word}" is a reserved CQL keyword/)
      end
      expect { Task::DataInterface::Interface.new(keyspace: "select") }.to raise_error(ArgumentError, /reserved CQL keyword/)
      %w[type key keys user ttl text tasks].each do |word|
        expect(cassandra.new(keyspace: word, tasks_table_name: word.to_sym).options)
          .to include(keyspace: word, tasks_table_name: word.to_sym)
      end
    end

    it "take timeouts in seconds as a positive, finite Integer or Float" do
      %i[request_timeout connect_timeout retry_deadline].each do |name|
        ["5", Rational(1, 2), nil, 0, -1, 0.0, Float::INFINITY, Float::NAN].each do |value|
          expect { cassandra.new(name => value) }
            .to raise_error(ArgumentError, /#{name} must be a positive, finite Integer or Float of seconds, got #{Regexp.escape(value.inspect)}/)
        end
        expect(cassandra.new(name => 2).options[name]).to eq(2.0)
        expect(cassandra.new(name => 0.25).options[name]).to eq(0.25)
      end
    end
  end
end
