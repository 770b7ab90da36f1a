# frozen_string_literal: true

require "spec_helper"
require "rbconfig"
require "tmpdir"

# Rows whose stored type names a class this process has not loaded (the command without -r,
# a web server without the app's classes): reading them is cheap, never raises NameError
# inside the gem, and never swallows an exception that is not "no such class".
RSpec.describe "rows of a class that is not loaded" do
  let(:list) { unique_list("unloaded") }
  let(:lib) { File.expand_path("../lib", __dir__) }
  let(:adapter) { Task::DataInterface::MemoryAdapter.new }

  before { use_adapter(adapter) }

  def store_rows(type, count)
    count.times { |i| adapter.store_row(task_list: list, id: format("%05d", i), type: type, data: '{"n":1}') }
  end

  def bad_rows(list)
    reasons = []
    Task::Task.all(list, on_bad_row: ->(row, e) { reasons << [row[:id], e] }).each { |t| reasons << [t.id, nil] }
    reasons
  end

  describe "interrupts" do
    # A process reading such rows in a loop gets `signal`: it must end within a second.
    def interrupt_delay(signal)
      script = <<~RUBY
        require "task"
        adapter = Task::DataInterface::MemoryAdapter.new
        Task::Task.interface = Task::DataInterface::Interface.new(adapter: adapter)
        2000.times { |i| adapter.store_row(task_list: "l", id: i.to_s, type: "Unloaded::Job", data: "{}") }
        $stdout.sync = true
        bad = 0
        loop do
          Task::Task.all("l", on_bad_row: ->(_row, _e) { bad += 1 }).each {}
          puts "read \#{bad}" if bad == 2000
        end
      RUBY
      IO.popen([RbConfig.ruby, "-I", lib, "-e", script], err: File::NULL) do |io|
        expect(io.gets).to eq("read 2000\n")
        Process.kill(signal, io.pid)
        sent = now
        ended = nil
        until now - sent > 10
          if Process.waitpid(io.pid, Process::WNOHANG)
            ended = now - sent
            break
          end
          sleep 0.01
        end
        Process.kill("KILL", io.pid) unless ended
        ended
      end
    end

    %w[INT TERM].each do |signal|
      it "ends a scan of them on SIG#{signal} within a second" do
        delay = interrupt_delay(signal)
        report("SIG#{signal} to a process reading unloaded rows: ended after #{delay ? format("%.3f s", delay) : "more than 10 s"}")
        expect(delay).not_to be_nil
        expect(delay).to be < 1
      end
    end

    it "lets any exception but 'no such class' out of a class lookup" do
      stub_const("Hooked", Module.new do
        def self.const_missing(name)
          raise "boom resolving #{name}" if name == :Boom
          return OtherMissingConstant if name == :Other # a NameError, for another name

          super
        end
      end)
      store_rows("Hooked::Boom", 3)
      expect { bad_rows(list) }.to raise_error(RuntimeError, "boom resolving Boom")
      expect { Task::Task.find(list, "00000") }.to raise_error(RuntimeError, "boom resolving Boom")
      other = unique_list("other")
      adapter.store_row(task_list: other, id: "1", type: "Hooked::Other", data: "{}")
      expect { bad_rows(other) }.to raise_error(NameError, /OtherMissingConstant/)
      missing = unique_list("missing")
      adapter.store_row(task_list: missing, id: "1", type: "Hooked::Gone", data: "{}")
      reasons = bad_rows(missing)
      expect(reasons.map { |(id, e)| [id, e.class] }).to eq([["1", Task::Error::BadData]])
      expect(reasons[0][1].message).to match(/task "1" of list "#{missing}".*Hooked::Gone/)
    end
  end

  describe "the lookup" do
    it "raises nothing inside the gem, whatever the rows name" do
      store_rows("Unloaded::Job", 5)
      adapter.store_row(task_list: list, id: "a", type: "NotATask", data: "{}")
      adapter.store_row(task_list: list, id: "b", type: "FetchFile::Nope", data: "{}")
      adapter.store_row(task_list: list, id: "c", type: "lower::case", data: "{}")
      adapter.store_row(task_list: list, id: "d", type: "Ünloaded", data: "{}")
      adapter.store_row(task_list: list, id: "e", type: "A:::B", data: "{}")
      adapter.store_row(task_list: list, id: "f", type: "FetchFile::String", data: "{}")
      adapter.store_row(task_list: list, id: "g", type: "Jobs::Cleanup::DeleteItem", data: "{}")
      adapter.store_row(task_list: list, id: "h", type: "::FetchFile", data: "{}")
      raised = []
      trace = TracePoint.new(:raise) { |tp| raised << tp.raised_exception.class }
      reasons = trace.enable { bad_rows(list) }
      expect(raised).to eq([])
      expect(reasons.count { |(_, e)| e.is_a?(Task::Error::BadData) }).to eq(11)
      expect(reasons.select { |(_, e)| e.nil? }.map(&:first)).to eq(%w[g h])
      by_id = reasons.to_h
      expect(by_id["00000"].message).to match(/"Unloaded::Job" names no task class/)
      expect(by_id["a"].message).to match(/does not include Task::Task/)
      expect(by_id["f"].message).to match(/FetchFile::String/)
    end

    it "asks a const_missing hook once per type name and page, not once per row" do
      asked = Hash.new(0)
      stub_const("Counted", Module.new do
        define_singleton_method(:const_missing) do |name|
          asked[name] += 1
          super(name)
        end
      end)
      store_rows("Counted::Job", 2500) # three pages of the memory store
      reasons = bad_rows(list)
      expect(reasons.size).to eq(2500)
      expect(asked[:Job]).to be_between(1, 3)
    end

    it "loads an autoloaded class and reads its rows" do
      Dir.mktmpdir do |dir|
        File.write(File.join(dir, "lazy_job.rb"), "module LazyJobs; class Lazy; include Task::Task; end; end\n")
        stub_const("LazyJobs", Module.new)
        LazyJobs.autoload(:Lazy, File.join(dir, "lazy_job.rb"))
        store_rows("LazyJobs::Lazy", 2)
        expect(Task::Task.all(list).map { |t| t.class.name }.to_a).to eq(%w[LazyJobs::Lazy LazyJobs::Lazy])
      end
    end
  end

  describe "Task::Task.from_json and from_hash" do
    it "raise NameError naming an unknown class, and let other exceptions out" do
      json = JSON.generate(task_list: "l", id: "1", data: {}, type: "Unloaded::Job")
      expect { Task::Task.from_json(json) }.to raise_error(NameError, /Unloaded/) { |e| expect(e.name).to eq(:Unloaded) }
      expect { Task::Task.from_hash(JSON.parse(json)) }.to raise_error(NameError, /Unloaded/)
      stub_const("Hooked", Module.new { def self.const_missing(name) = raise(IOError, "boom #{name}") })
      json = JSON.generate(task_list: "l", id: "1", data: {}, type: "Hooked::Job")
      expect { Task::Task.from_json(json) }.to raise_error(IOError, "boom Job")
    end

    it "reads the text it was given even when a const_missing hook changes that String" do
      text = +JSON.generate(task_list: "l", id: "1", data: { "k" => "v" * 200 }, type: "Mutating::Job")
      stub_const("Mutating", Module.new do
        define_singleton_method(:const_missing) do |name|
          text.replace("x") # frees the old bytes
          junk = Array.new(200) { "Z" * 300 } # and lets malloc hand them out again
          junk.clear
          super(name)
        end
      end)
      expect { Task::Task.from_json(text) }.to raise_error(NameError, /Mutating::Job/)
    end
  end

  it "frees a scan's page when its class cannot be allocated" do
    script = <<~RUBY
      require "task"
      class Unallocatable < Task::DataInterface::TaskScan
        include Task::Task
      end
      adapter = Task::DataInterface::MemoryAdapter.new
      Task::Task.interface = Task::DataInterface::Interface.new(adapter: adapter)
      big = JSON.generate("blob" => "x" * 4000)
      1000.times { |i| adapter.store_row(task_list: "l", id: i.to_s, type: "Unallocatable", data: big) }
      rss = -> { File.read("/proc/self/status")[/VmRSS:\\s+(\\d+)/, 1].to_i / 1024 }
      run = -> { Task::Task.all("l").first rescue TypeError }
      10.times { run.() }
      GC.start
      before = rss.()
      60.times { run.() }
      GC.start
      puts rss.() - before
    RUBY
    out = IO.popen([RbConfig.ruby, "-I", lib, "-e", script], err: %i[child out], &:read)
    report("RSS growth over 60 failed scans of 1000 rows of 4 KB: #{out.strip} MB")
    expect(Integer(out)).to be < 40
  end

  it "resolves classes and builds nested data correctly under GC.stress and compaction" do
    script = <<~'RUBY'
      require "task"
      class J; include Task::Task; end
      module Hook; def self.const_missing(n) = super; end
      a = Task::DataInterface::MemoryAdapter.new
      Task::Task.interface = Task::DataInterface::Interface.new(adapter: a)
      GC.stress = true
      J.create(task_list: "l", id: "1", opts: { retries: 3, list: [{ a: { b: 1 } }] })
      a.store_row(task_list: "l", id: "2", type: "Unloaded::X", data: "{}")
      a.store_row(task_list: "l", id: "3", type: "Hook::X", data: "{}")
      bad = []
      got = Task::Task.all("l", on_bad_row: ->(r, e) { bad << r[:id] }).to_a
      raise "all" unless got.size == 1 && got[0].data[:opts][:list][0][:a][:b] == 1 && bad == %w[2 3]
      t = Task::Task.find("l", "1")
      raise "find" unless t.data[:opts]["retries"] == 3
      raise "json" unless Task::Task.from_json(t.to_json).data[:opts][:list][0]["a"][:b] == 1
      raise "hash" unless Task::Task.from_hash(t.as_hash).data[:opts][:list][0]["a"][:b] == 1
      missing = begin
        Task::Task.from_json('{"type":"Hook::Y","data":{}}')
      rescue NameError => e
        e
      end
      raise "from_json of a missing class" unless missing.is_a?(NameError) && missing.name == :Y
      GC.stress = false
      GC.verify_compaction_references(double_heap: true, toward: :empty) rescue GC.compact
      raise "after compaction" unless Task::Task.find("l", "1").data[:opts][:list][0][:a][:b] == 1
      puts "ok"
    RUBY
    out = IO.popen([RbConfig.ruby, "-I", lib, "-e", script], err: %i[child out], &:read)
    expect(out).to eq("ok\n")
  end
end
