# frozen_string_literal: true

# How the native binding meets Ruby: every call reaches methods prepended by instrumentation;
# nothing breaks when the GC compacts the heap in the middle of a scan or a bulk call; scans
# behave like Ruby's own enumerables.
RSpec.describe "the native binding" do
  let(:list) { unique_list("binding") }

  stores = {
    memory: -> { Task::DataInterface::MemoryAdapter.new(page_size: 7) },
    cassandra: -> { cassandra_adapter(page_size: 7) }
  }

  # What an APM or logging gem does: prepend a module that records each call, then super.
  def recorder(log, name)
    Module.new do
      %i[store find all delete].each do |m|
        define_method(m) do |*args, **kw, &blk|
          log << [name, m]
          kw.empty? ? super(*args, &blk) : super(*args, **kw, &blk)
        end
      end
    end
  end

  stores.each do |store, make|
    it "lets modules prepended to Interface and to the adapter class see save, complete, find and all (#{store})" do
      log = []
      adapter = instance_exec(&make)
      interface_class = Class.new(Task::DataInterface::Interface)
      interface_class.prepend(recorder(log, :interface))
      adapter.singleton_class.prepend(recorder(log, :adapter))
      Task::Task.interface = interface_class.new(adapter: adapter)

      task = FetchFile.build(task_list: list, id: "a", filename: "f")
      task.save
      expect(Task::Task.find(list, "a").filename).to eq("f")
      expect(Task::Task.all(list).map(&:id).to_a).to eq(["a"])
      task.complete
      expect(Task::Task.find(list, "a")).to be_nil

      expected = %i[store find all delete find].flat_map { |m| [[:interface, m], [:adapter, m]] }
      expect(log).to eq(expected)
    end

    it "sees save and complete through a module prepended to Interface itself (#{store})" do
      log = []
      adapter = instance_exec(&make)
      mod = recorder(log, :interface)
      Task::DataInterface::Interface.prepend(mod)
      begin
        use_adapter(adapter)
        FetchFile.create(task_list: list, id: "b")
        FetchFile.new(task_list: list, id: "b").complete
        expect(log).to eq([%i[interface store], %i[interface delete]])
      ensure
        # A prepended module cannot be removed: make it pass calls straight through again.
        %i[store find all delete].each { |m| mod.send(:remove_method, m) }
      end
    end

    it "survives GC compaction inside a scan, between pages and during a bulk store, with classes made at run time (#{store})" do
      adapter = instance_exec(&make)
      use_adapter(adapter)
      suffix = SecureRandom.hex(4)
      classes = 3.times.map do |i|
        name = "CompactedTask#{suffix}#{i}"
        Object.const_set(name, Class.new { include Task::Task; data_attr_reader :n })
      end
      compact = lambda do
        GC.compact
        if GC.respond_to?(:verify_compaction_references)
          begin
            GC.verify_compaction_references(expand_heap: true, toward: :empty)
          rescue ArgumentError
            GC.verify_compaction_references(double_heap: true, toward: :empty)
          end
        end
      end
      # A value whose to_json compacts the heap while the bulk call is converting tasks.
      compacting = Object.new
      compacting.define_singleton_method(:to_json) do |*_|
        compact.call
        '"compacted"'
      end
      tasks = (1..40).map do |i|
        classes[i % 3].build(task_list: list, id: format("%03d", i), n: i, x: (i == 20 ? compacting : i))
      end
      expect(adapter.store_many(tasks, concurrency: 4)).to eq(40)

      seen = []
      Task::Task.all(list).each do |t|
        compact.call if (seen.size % 7).zero? # at each page boundary (7 a page) and within
        seen << [t.class, t.id, t.n]
      end
      expect(seen).to eq(tasks.map { |t| [t.class, t.id, t.n] })
      expect(Task::Task.find(list, "020").data[:x]).to eq("compacted")
    end

    it "gives an Enumerator from TaskScan#each without a block and the scan with one (#{store})" do
      adapter = instance_exec(&make)
      adapter.store_many((1..3).map { |i| FetchFile.build(task_list: list, id: i.to_s) })
      lazy = adapter.all(list) # the scan, wrapped in Enumerator::Lazy
      scan = ObjectSpace.each_object(Task::DataInterface::TaskScan).find { |s| s.task_list == list }
      expect(scan).not_to be_nil
      each = scan.each
      expect(each).to be_a(Enumerator)
      expect(each.map(&:id)).to eq(%w[1 2 3])
      expect(scan.each { |_t| nil }).to equal(scan)
      expect(lazy.map(&:id).to_a).to eq(%w[1 2 3])
    end
  end

  it "deletes a memory list of 100,000 tasks in one step" do
    adapter = Task::DataInterface::MemoryAdapter.new
    adapter.store_many((1..100_000).map { |i| FetchFile.build(task_list: list, id: i.to_s) })
    adapter.store(FetchFile.build(task_list: "#{list}-kept", id: "k"))
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    adapter.delete_list(list)
    elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    expect(adapter.rows(list).to_a).to eq([])
    expect(adapter.find("#{list}-kept", "k")).to be_a(FetchFile)
    report format("memory delete_list of 100,000 tasks: %.3f s", elapsed)
  end
end
