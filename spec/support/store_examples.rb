# frozen_string_literal: true

# The behaviour every store must have, run against the MemoryAdapter and against the
# CassandraAdapter on the real node. The including group defines `adapter` and
# `paged_adapter` (the same store with a small page size, `page_size` rows a page).
RSpec.shared_examples "a task store" do
  let(:list) { unique_list }

  before { use_adapter(adapter) }

  def row_of(task_list, id)
    adapter.rows(task_list).find { |r| r[:id] == id }
  end

  describe "save, find, complete" do
    it "finds a saved task with every attribute and its class" do
      task = FetchFile.build(task_list: list, id: "file1", external_host: "datto.com", filename: "file1.txt")
      expect(task.save).to be_nil
      found = Task::Task.find(list, "file1")
      expect(found).to be_a(FetchFile)
      expect(found.attributes).to eq(task_list: list, id: "file1", data: { external_host: "datto.com", filename: "file1.txt" })
      expect(found.filename).to eq("file1.txt")
    end

    it "returns nil for a task that is not stored" do
      expect(Task::Task.find(list, "missing")).to be_nil
    end

    it "overwrites on a second save with the same list, id and type (an upsert)" do
      task = FetchFile.build(task_list: list, id: "a", filename: "v1")
      task.save
      task.data[:filename] = "v2"
      task.save
      expect(Task::Task.all(list).map(&:filename).to_a).to eq(["v2"])
    end

    it "removes a task on complete, returns nil, and completing it again is fine" do
      task = FetchFile.create(task_list: list, id: "a")
      expect(task.complete).to be_nil
      expect(Task::Task.find(list, "a")).to be_nil
      expect(task.complete).to be_nil
    end

    it "keeps lists apart" do
      other = unique_list("other")
      FetchFile.create(task_list: list, id: "same")
      FetchFile.create(task_list: other, id: "same")
      Task::Task.find(list, "same").complete
      expect(Task::Task.find(other, "same")).not_to be_nil
    end

    it "deletes every type stored under an id, and finds the first of them" do
      adapter.store_row(task_list: list, id: "x", type: "Jobs::Cleanup::DeleteItem", data: '{"item_id":1}')
      adapter.store_row(task_list: list, id: "x", type: "FetchFile", data: '{"filename":"f"}')
      expect(adapter.rows(list).map { |r| r[:type] }.to_a).to eq(%w[FetchFile Jobs::Cleanup::DeleteItem])
      expect(Task::Task.find(list, "x")).to be_a(FetchFile)
      adapter.delete(list, "x")
      expect(adapter.rows(list).to_a).to be_empty
    end

    it "rebuilds tasks of nested class names" do
      Jobs::Cleanup::DeleteItem.create(task_list: list, id: "n", item_id: 42)
      found = Task::Task.find(list, "n")
      expect(found).to be_a(Jobs::Cleanup::DeleteItem)
      expect(found.execute(suffix: "!")).to eq("deleted 42!")
    end
  end

  describe "all" do
    it "is an Enumerator::Lazy over every task of the list, in id order, across pages" do
      use_adapter(paged_adapter)
      count = page_size * 3 + 2
      ids = (0...count).map { |i| format("id-%04d", i) }
      ids.shuffle.each { |id| FetchFile.create(task_list: list, id: id, n: id) }
      FetchFile.create(task_list: unique_list("elsewhere"), id: "id-0000")
      all = Task::Task.all(list)
      expect(all).to be_a(Enumerator::Lazy)
      expect(all.map(&:id).to_a).to eq(ids)
      expect(all.first(2).map(&:id)).to eq(ids.first(2))
    end

    it "reads one page at a time: nothing before iterating, the first task after one page, no more after a break" do
      tasks = (0...page_size * 4).map { |i| FetchFile.build(task_list: list, id: format("p%04d", i)) }
      paged_adapter.store_many(tasks)
      use_adapter(paged_adapter)
      before = paged_adapter.pages_read
      all = Task::Task.all(list)
      expect(paged_adapter.pages_read - before).to eq(0)
      external = all.each_entry
      expect(external.next.id).to eq("p0000")
      expect(paged_adapter.pages_read - before).to eq(1)
      expect(all.first(page_size + 1).size).to eq(page_size + 1)
      expect(paged_adapter.pages_read - before).to eq(3)
      count = 0
      all.each { |_t| break if (count += 1) == 2 }
      expect(paged_adapter.pages_read - before).to eq(4)
    end

    it "serves several scans at once, from threads, each whole and in order" do
      lists = 3.times.map { |t| unique_list("scan#{t}") }
      lists.each do |l|
        paged_adapter.store_many((0...page_size * 3 + 1).map { |i| FetchFile.build(task_list: l, id: format("%04d", i)) })
      end
      use_adapter(paged_adapter)
      ids = lists.map { |l| Thread.new { Task::Task.all(l).map(&:id).to_a } }.map(&:value)
      expect(ids).to all(eq((0...page_size * 3 + 1).map { |i| format("%04d", i) }))
    end

    it "is empty for a list with no tasks" do
      expect(Task::Task.all(list).to_a).to eq([])
    end
  end

  describe "the data column" do
    let(:data) do
      {
        text: "Grüße, 世界 🚀 \"quoted\" back\\slash\n\t\u0001 </script>",
        nested: { "inner" => { "deep" => [1, 2.5, nil, true, false, "x"] }, "list" => [] },
        big: 2**40,
        bigger: 2**64 + 1,
        negative: -(2**63),
        floats: [0.1, -2.5, 1.0e20, 1.0e-5, 123_456_789.125, 0.0],
        yes: true,
        no: false,
        nothing: nil,
        empty: {}
      }
    end

    it "holds the text Ruby's JSON.generate writes, and JSON.parse reads it back to the same hash" do
      FetchFile.create(task_list: list, id: "d", **data)
      text = row_of(list, "d")[:data]
      expect(text).to eq(JSON.generate(data))
      expect(JSON.parse(text)).to eq(JSON.parse(JSON.generate(data)))
      expect(row_of(list, "d")[:type]).to eq("FetchFile")
    end

    it "reads back what was saved, value for value, types included" do
      FetchFile.create(task_list: list, id: "d", **data)
      found = Task::Task.find(list, "d").data
      expect(found).to eq(data.transform_values { |v| v.is_a?(Hash) ? JSON.parse(JSON.generate(v)) : v })
      expect(found[:bigger]).to be_an(Integer)
      expect(found[:floats].map(&:class).uniq).to eq([Float])
      expect(found.keys).to eq(data.keys)
    end

    it "reads rows written by the original gem (JSON.generate text) as the original would" do
      original = { "filename" => "a.txt", "meta" => { "size" => 12, "tags" => ["x"] }, "ratio" => 0.5 }
      adapter.store_row(task_list: list, id: "old", type: "FetchFile", data: JSON.generate(original))
      task = Task::Task.find(list, "old")
      expect(task.data).to eq(filename: "a.txt", meta: { "size" => 12, "tags" => ["x"] }, ratio: 0.5)
      task.save
      expect(row_of(list, "old")[:data]).to eq(JSON.generate(original))
    end

    it "stores values with no JSON type the way JSON.generate does" do
      at = Time.utc(2020, 1, 2, 3, 4, 5)
      odd = Struct.new(:a).new(1)
      FetchFile.create(task_list: list, id: "s", sym: :value, at: at, odd: odd, key_types: { 1 => "int key", sym: "sym key" })
      expect(row_of(list, "s")[:data]).to eq(JSON.generate({ sym: :value, at: at, odd: odd, key_types: { 1 => "int key", sym: "sym key" } }))
      expect(Task::Task.find(list, "s").data[:sym]).to eq("value")
    end
  end

  describe "bad input" do
    it "rejects a nil or empty task list or id, naming it, and keeps what was stored" do
      FetchFile.create(task_list: list, id: "keep", filename: "original")
      [[nil, "keep", "task_list"], ["", "keep", "task_list"], [list, nil, "id"], [list, "", "id"]].each do |task_list, id, field|
        task = FetchFile.new(task_list: task_list, id: id, data: { filename: "clobber" })
        expect { task.save }.to raise_error(ArgumentError, /task #{field} must be a non-empty String/)
      end
      expect { Task::Task.find(list, nil) }.to raise_error(ArgumentError, /id/)
      expect { Task::Task.all("") }.to raise_error(ArgumentError, /task_list/)
      expect(Task::Task.find(list, "keep").filename).to eq("original")
    end

    it "rejects data that is not a Hash" do
      expect { FetchFile.new(task_list: list, id: "x", data: [1, 2]) }.to raise_error(ArgumentError, /data must be a Hash.*Array/)
      task = FetchFile.new(task_list: list, id: "x")
      expect { task.data = "text" }.to raise_error(ArgumentError, /data must be a Hash/)
    end

    it "rejects data JSON cannot hold (NaN, Infinity, invalid UTF-8) and keeps the stored version" do
      FetchFile.create(task_list: list, id: "keep", filename: "original")
      bad = [
        [{ ratio: Float::NAN }, /ratio.*NaN/],
        [{ nested: { "x" => [Float::INFINITY] } }, /nested.*Infinity/],
        [{ name: "caf\xE9".dup.force_encoding("UTF-8") }, /name.*not valid UTF-8/]
      ]
      bad.each do |data, message|
        task = FetchFile.new(task_list: list, id: "keep", data: data)
        expect { task.save }.to raise_error(Task::Error::BadData, message)
        expect { task.save }.to raise_error(/task "keep" of list "#{list}"/)
      end
      expect(Task::Task.find(list, "keep").filename).to eq("original")
    end

    it "raises an error naming the list and id for a stored row whose type names no task class" do
      adapter.store_row(task_list: list, id: "ghost", type: "NoSuchTaskClass", data: "{}")
      adapter.store_row(task_list: list, id: "plain", type: "NotATask", data: "{}")
      expect { Task::Task.find(list, "ghost") }.to raise_error(Task::Error::BadData, /task "ghost" of list "#{list}".*NoSuchTaskClass/)
      expect { Task::Task.find(list, "plain") }.to raise_error(Task::Error::BadData, /task "plain" of list "#{list}".*does not include Task::Task/)
      expect { Task::Task.all(list).to_a }.to raise_error(Task::Error::BadData, /ghost/)
    end

    it "raises an error naming the list and id for a stored row whose data is not JSON" do
      adapter.store_row(task_list: list, id: "junk", type: "FetchFile", data: "{not json")
      adapter.store_row(task_list: list, id: "list", type: "FetchFile", data: "[1,2]")
      expect { Task::Task.find(list, "junk") }.to raise_error(Task::Error::BadData, /task "junk" of list "#{list}".*not a JSON object/)
      expect { Task::Task.find(list, "list") }.to raise_error(Task::Error::BadData, /task "list" of list "#{list}"/)
    end
  end

  describe "bad rows (written by hand or by another tool)" do
    # Ids 001..N with, among them, a null data column, data that is not JSON and a type that
    # names no task class; on a small page size, so bad rows sit mid-page and past page one.
    let(:bad_ids) { %w[004 009 013] }

    def store_list_with_bad_rows(count = 3 * page_size + 2)
      ids = (1..count).map { |i| format("%03d", i) }
      paged_adapter.store_many((ids - bad_ids).map { |id| FetchFile.build(task_list: list, id: id, n: id.to_i) })
      paged_adapter.store_row(task_list: list, id: "004", type: "FetchFile", data: nil)
      paged_adapter.store_row(task_list: list, id: "009", type: "FetchFile", data: "{not json")
      paged_adapter.store_row(task_list: list, id: "013", type: "NoSuchTaskClass", data: "{}")
      ids
    end

    it "rows returns every row as stored, a null data column as nil" do
      ids = store_list_with_bad_rows
      rows = paged_adapter.rows(list).to_a
      expect(rows.map { |r| r[:id] }).to eq(ids)
      expect(rows.find { |r| r[:id] == "004" }).to eq(task_list: list, id: "004", type: "FetchFile", data: nil)
      expect(rows.find { |r| r[:id] == "009" }[:data]).to eq("{not json")
    end

    it "all yields every good row before a bad one, then raises BadData naming its list and id" do
      store_list_with_bad_rows
      use_adapter(paged_adapter)
      seen = []
      expect { Task::Task.all(list).each { |t| seen << t.id } }
        .to raise_error(Task::Error::BadData, /task "004" of list "#{list}".*null/)
      expect(seen).to eq(%w[001 002 003])
      expect { paged_adapter.find(list, "004") }.to raise_error(Task::Error::BadData, /"004".*null/)
    end

    it "all(on_bad_row: callable) hands over each bad row with its error and goes on" do
      ids = store_list_with_bad_rows
      use_adapter(paged_adapter)
      bad = []
      good = Task::Task.all(list, on_bad_row: ->(row, error) { bad << [row[:id], row[:data], error.class] }).map(&:id).to_a
      expect(good).to eq(ids - bad_ids)
      expect(bad).to eq([["004", nil, Task::Error::BadData], ["009", "{not json", Task::Error::BadData],
                         ["013", "{}", Task::Error::BadData]])
      # Every row is still stored: reporting a row changes nothing.
      expect(paged_adapter.rows(list).count).to eq(ids.size)
    end

    it "all(on_bad_row: :skip) warns about each bad row and goes on; :raise is the default" do
      ids = store_list_with_bad_rows
      good = nil
      expect { good = paged_adapter.all(list, on_bad_row: :skip).map(&:id).to_a }
        .to output(/skipped a bad row: task "004".*\n.*task "009".*\n.*task "013"/).to_stderr
      expect(good).to eq(ids - bad_ids)
      expect { paged_adapter.all(list, on_bad_row: :raise).to_a }.to raise_error(Task::Error::BadData, /"004"/)
      expect { paged_adapter.all(list, on_bad_row: :ignore) }.to raise_error(ArgumentError, /on_bad_row/)
      expect { paged_adapter.all(list, on_bad_rows: :skip) }.to raise_error(ArgumentError, /on_bad_rows/)
    end
  end

  describe "bulk calls" do
    it "stores and completes many tasks at once" do
      tasks = (1..120).map { |i| FetchFile.build(task_list: list, id: format("b%03d", i), n: i) }
      expect(adapter.store_many(tasks, concurrency: 16)).to eq(120)
      expect(Task::Task.all(list).count).to eq(120)
      expect(adapter.delete_many(tasks.first(100))).to eq(100)
      expect(adapter.delete_many([[list, "b101"]])).to eq(1)
      expect(Task::Task.all(list).map(&:id).to_a).to eq((102..120).map { |i| format("b%03d", i) })
    end

    it "rejects a bulk call with a bad task before writing any of it" do
      tasks = [FetchFile.build(task_list: list, id: "ok"), FetchFile.build(task_list: list, id: "")]
      expect { adapter.store_many(tasks) }.to raise_error(ArgumentError, /id/)
      expect(Task::Task.all(list).to_a).to be_empty
    end
  end

  it "is safe to use from many threads at once" do
    threads = 8.times.map do |t|
      Thread.new { 25.times { |i| FetchFile.create(task_list: list, id: "t#{t}-#{i}") } }
    end
    threads.each(&:join)
    expect(Task::Task.all(list).count).to eq(200)
  end
end
