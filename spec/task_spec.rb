# frozen_string_literal: true

# Task::Task, row by row as the compatibility page describes it.
RSpec.describe Task::Task do
  describe "attributes" do
    it "has readers and writers for task_list, id and data, with data defaulting to {}" do
      task = FetchFile.new
      expect(task.attributes).to eq(task_list: nil, id: nil, data: {})
      task.task_list = "l"
      task.id = "i"
      task.data = { a: 1 }
      expect([task.task_list, task.id, task.data]).to eq(["l", "i", { a: 1 }])
    end

    it "coerces task_list and id to Strings" do
      task = FetchFile.new(task_list: :list, id: 7)
      expect(task.id).to eq("7")
      expect(task.task_list).to eq("list")
      task.id = 8.5
      expect(task.id).to eq("8.5")
    end

    it "symbolizes the top-level keys of data only" do
      task = FetchFile.new(data: { "x" => 1, "nested" => { "y" => 2 }, z: 3 })
      expect(task.data).to eq(x: 1, nested: { "y" => 2 }, z: 3)
      task.data = { "w" => 0 }
      expect(task.data).to eq(w: 0)
      task.data = nil
      expect(task.data).to eq({})
    end
  end

  describe ".new" do
    it "mass-assigns from Symbol or String keys and ignores unknown keys" do
      a = FetchFile.new(task_list: "l", id: "1", data: { filename: "f" }, colour: "red")
      b = FetchFile.new("task_list" => "l", "id" => "1", "data" => { "filename" => "f" }, "colour" => "red")
      expect(a.attributes).to eq(task_list: "l", id: "1", data: { filename: "f" })
      expect(b.attributes).to eq(a.attributes)
    end

    it "lets a class override initialize and call super" do
      klass = Class.new do
        include Task::Task
        attr_reader :extra

        def initialize(attrs = {})
          super
          @extra = :set
        end
      end
      task = klass.new(id: 1)
      expect([task.id, task.extra]).to eq(["1", :set])
    end
  end

  # build, from_hash and scans make a task without Class#new when nothing would differ;
  # whatever a class redefines, they must go through it exactly as Class#new does.
  describe "making tasks when a class redefines how it is made" do
    def hooked(&body)
      stub_const("HookedTask", Class.new { include Task::Task })
      HookedTask.class_eval(&body)
      HookedTask
    end

    def made_by_each(klass)
      built = klass.build(task_list: "l", id: "1", "k" => 2)
      loaded = Task::Task.from_hash("type" => "HookedTask", "task_list" => "l", "id" => "1", "data" => { "k" => 2 })
      Task::Task.interface.store(built)
      scanned = Task::Task.all("l").first
      [built, loaded, scanned]
    end

    it "runs an initialize defined after tasks of the class were already made" do
      klass = hooked {}
      expect(made_by_each(klass).map { |t| t.instance_variable_get(:@seen) }).to eq([nil, nil, nil])
      klass.class_eval do
        def initialize(attrs = {})
          super
          @seen = data[:k]
        end
      end
      expect(made_by_each(klass).map { |t| t.instance_variable_get(:@seen) }).to eq([2, 2, 2])
    end

    it "runs an initialize from a prepended module" do
      klass = hooked do
        prepend(Module.new do
          def initialize(attrs = {})
            super
            @seen = :prepended
          end
        end)
      end
      expect(made_by_each(klass).map { |t| t.instance_variable_get(:@seen) }).to eq(%i[prepended] * 3)
    end

    it "runs a class's own new" do
      klass = hooked do
        def self.new(attrs)
          super.tap { |t| t.instance_variable_set(:@seen, :new) }
        end
      end
      expect(made_by_each(klass).map { |t| t.instance_variable_get(:@seen) }).to eq(%i[new] * 3)
    end

    it "gives the same attributes either way, String data keys made Symbols" do
      plain = made_by_each(hooked {}).map(&:attributes)
      custom = made_by_each(hooked { def initialize(attrs = {}) = super }).map(&:attributes)
      expect(plain).to eq([{ task_list: "l", id: "1", data: { k: 2 } }] * 3)
      expect(custom).to eq(plain)
    end
  end

  describe ".build" do
    it "takes :task_list and :id out and puts every other key into data" do
      task = FetchFile.build(id: "file1", task_list: "datto.com", external_host: "datto.com", filename: "file1.txt")
      expect(task.attributes).to eq(task_list: "datto.com", id: "file1",
                                    data: { external_host: "datto.com", filename: "file1.txt" })
    end

    it "makes a random 32-hex-digit id when none is given" do
      ids = 3.times.map { FetchFile.build(task_list: "l").id }
      expect(ids).to all(match(/\A\h{32}\z/))
      expect(ids.uniq.size).to eq(3)
    end

    it "leaves the caller's hash untouched (the original deleted keys from it)" do
      options = { task_list: "l", id: "1", filename: "f" }
      copy = options.dup
      FetchFile.build(options)
      expect(options).to eq(copy)
    end
  end

  describe ".create" do
    it "builds, saves and returns the task" do
      task = FetchFile.create(task_list: "l", id: "c", filename: "f")
      expect(task).to be_a(FetchFile)
      expect(Task::Task.find("l", "c").filename).to eq("f")
    end
  end

  describe ".data_attr_reader" do
    it "defines a reader for a data field" do
      task = FetchFile.build(task_list: "l", filename: "a.txt")
      expect(task.filename).to eq("a.txt")
      expect(task.filename).to eq(task.data[:filename])
      expect(task.external_host).to be_nil
    end
  end

  describe "#execute" do
    it "raises NotImplementedError unless the class defines it" do
      expect { FetchFile.build(task_list: "l").execute }.to raise_error(NotImplementedError, /FetchFile#execute/)
      expect(Jobs::Cleanup::DeleteItem.build(task_list: "l", item_id: 3).execute).to eq("deleted 3")
    end
  end

  describe "#as_hash" do
    it "is the attributes plus the class name as :type" do
      task = Jobs::Cleanup::DeleteItem.build(task_list: "l", id: "1", item_id: 9)
      expect(task.as_hash).to eq(task_list: "l", id: "1", data: { item_id: 9 }, type: "Jobs::Cleanup::DeleteItem")
    end
  end

  describe "#save and #complete" do
    it "return nil and go through Task::Task.interface" do
      adapter = HashAdapter.new
      use_adapter(adapter)
      task = FetchFile.build(task_list: "l", id: "1")
      expect(task.save).to be_nil
      expect(adapter.rows["l"].keys).to eq(["1"])
      expect(task.complete).to be_nil
      expect(adapter.rows["l"]).to be_empty
    end

    it "store what a task's own readers return when its class, a prepended module or the object redefines them" do
      stub_const("ReaderTask", Class.new(FetchFile) { def task_list = "#{super}-own" })
      stub_const("Uppercase", Module.new { def data = super.merge(upper: true) })
      ReaderTask.prepend(Uppercase)
      stub_const("NoSuper", Class.new(FetchFile) do
        # Skips super: made with only an id, @task_list and @data are never set.
        def initialize(attrs)
          return @id = attrs unless attrs.is_a?(Hash)

          @task_list, @id, @data = attrs.values_at(:task_list, :id, :data)
        end
      end)
      adapter = Task::DataInterface::MemoryAdapter.new
      plain = FetchFile.build(task_list: "l", id: "plain", filename: "a")
      own = ReaderTask.build(task_list: "l", id: "own", filename: "b")
      single = FetchFile.build(task_list: "l", id: "single", filename: "c")
      single.define_singleton_method(:id) { "single-own" }
      bare = NoSuper.new("bare") # no @task_list, no @data: the readers' nil and {}
      bare.define_singleton_method(:task_list) { "l" }
      [[plain, "l", "plain", { filename: "a" }], [own, "l-own", "own", { filename: "b", upper: true }],
       [single, "l", "single-own", { filename: "c" }], [bare, "l", "bare", {}]].each do |task, list, id, data|
        [[:store, task], [:store_many, [task]]].each do |method, arg|
          adapter.public_send(method, arg)
          found = adapter.find(list, id)
          stored = %i[@task_list @id @data].map { |v| found&.instance_variable_get(v) }
          expect([found.class, *stored]).to eq([task.class, list, id, data]), "#{method} of #{task.class} #{id}"
          adapter.delete(list, id)
        end
      end
    end

    it "refuses to save an instance of an anonymous class, which could never be found again" do
      task = Class.new { include Task::Task }.new(task_list: "l", id: "1")
      expect { task.save }.to raise_error(ArgumentError, /anonymous class/)
    end
  end

  describe ".from_hash" do
    let(:task) { Jobs::Cleanup::DeleteItem.build(task_list: "l", id: "1", item_id: 9, meta: { "k" => [1] }) }

    it "rebuilds the task as_hash described, nested class names included" do
      copy = Task::Task.from_hash(task.as_hash)
      expect(copy).to be_a(Jobs::Cleanup::DeleteItem)
      expect(copy.attributes).to eq(task.attributes)
    end

    it "accepts the String keys of a hash that went through JSON" do
      wire = JSON.parse(JSON.generate(task.as_hash))
      copy = Task::Task.from_hash(wire)
      expect(copy.attributes).to eq(task.attributes)
    end

    it "takes a Symbol type, and prefers a Symbol key over the same name as a String" do
      mixed = { "type" => "FetchFile", type: :"Jobs::Cleanup::DeleteItem", "id" => "s", id: "1",
                "task_list" => "l", "data" => { "item_id" => 3 }, extra: true }
      copy = Task::Task.from_hash(mixed)
      expect(copy).to be_a(Jobs::Cleanup::DeleteItem)
      expect(copy.attributes).to eq(task_list: "l", id: "1", data: { item_id: 3 })
    end

    it "raises NameError for an unknown class name" do
      expect { Task::Task.from_hash(task.as_hash.merge(type: "NoSuchClass")) }.to raise_error(NameError, /NoSuchClass/)
    end

    it "refuses classes that do not include Task::Task" do
      %w[NotATask Kernel File].each do |name|
        expect { Task::Task.from_hash(task.as_hash.merge(type: name)) }
          .to raise_error(Task::Error::InvalidType, /#{name}/)
      end
    end

    it "needs a type" do
      expect { Task::Task.from_hash(task_list: "l", id: "1") }.to raise_error(ArgumentError, /:type/)
    end
  end

  describe ".interface" do
    it "is an Interface, reused from call to call" do
      Task::Task.interface = nil
      Task::DataInterface::Interface.adapter_builder = ->(_) { Task::DataInterface::MemoryAdapter.new }
      expect(Task::Task.interface).to be_a(Task::DataInterface::Interface)
      expect(Task::Task.interface).to equal(Task::Task.interface)
    end

    it "is rebuilt after adapter_builder changes" do
      first = Task::DataInterface::MemoryAdapter.new
      second = Task::DataInterface::MemoryAdapter.new
      Task::DataInterface::Interface.adapter_builder = ->(_) { first }
      expect(Task::Task.interface.adapter).to equal(first)
      Task::DataInterface::Interface.adapter_builder = ->(_) { second }
      expect(Task::Task.interface.adapter).to equal(second)
    end
  end

  describe "Task::VERSION" do
    it "is a version string" do
      expect(Task::VERSION).to match(/\A\d+\.\d+\.\d+\z/)
    end
  end

  it "loads nothing from ActiveSupport, Virtus, Cassava or Pyper, and loads warning-free" do
    lib = File.expand_path("../lib", __dir__)
    script = 'require "task"; puts $LOADED_FEATURES.grep(/active_support|virtus|cassava|pyper/)'
    out = IO.popen([RbConfig.ruby, "-w", "-I", lib, "-e", script], err: %i[child out], &:read)
    expect($?.success?).to be(true), out
    expect(out).to eq("")
  end
end
