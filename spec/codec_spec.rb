# frozen_string_literal: true

# The data column, checked against Ruby's own JSON on many generated values: writing gives
# JSON.generate's bytes, reading gives JSON.parse's values.
RSpec.describe "the data codec" do
  let(:adapter) { Task::DataInterface::MemoryAdapter.new }
  let(:rng) { Random.new(20_261_130) }

  before { use_adapter(adapter) }

  def random_string
    pool = ["a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\b", "\f", "\r", "\u0000", "\u001f", "\u007f",
            "é", "ß", "中", "\u2028", "😀", "𝄞", "\uFFFD"]
    Array.new(rng.rand(0..12)) { pool[rng.rand(pool.size)] }.join
  end

  def random_float
    case rng.rand(4)
    when 0 then [rng.bytes(8)].pack("a8").unpack1("D").then { |f| f.finite? ? f : 1.5 }
    when 1 then rng.rand * 10**rng.rand(-12..25)
    when 2 then rng.rand(-1000..1000) / 8.0
    else [0.1, 1.0e16, 1.0e15, 9_999_999_999_999_998.0, 1.0e-4, 1.0e-5, -0.0, 5.0e-324, 1.7976931348623157e308].sample(random: rng)
    end
  end

  def random_value(depth = 0)
    case rng.rand(depth > 3 ? 6 : 8)
    when 0 then random_string
    when 1 then [-(2**rng.rand(0..80)), 2**rng.rand(0..80), rng.rand(-10**6..10**6)].sample(random: rng)
    when 2 then random_float
    when 3 then [true, false, nil].sample(random: rng)
    when 4 then rng.rand(-3..3)
    when 5 then random_string.to_sym
    when 6 then Array.new(rng.rand(0..4)) { random_value(depth + 1) }
    else Array.new(rng.rand(0..4)) { [random_string, random_value(depth + 1)] }.to_h
    end
  end

  it "writes exactly what JSON.generate writes, for 3,000 generated data hashes" do
    3000.times do |i|
      data = Array.new(rng.rand(0..5)) { [random_string.to_sym, random_value] }.to_h
      FetchFile.new(task_list: "codec", id: i.to_s, data: data).save
      stored = adapter.rows("codec").find { |r| r[:id] == i.to_s }[:data]
      expect(stored).to eq(JSON.generate(data)), "data #{data.inspect}"
    end
  end

  it "reads what JSON.parse reads, for 3,000 generated documents" do
    3000.times do |i|
      data = Array.new(rng.rand(0..5)) { [random_string, random_value] }.to_h
      text = JSON.generate(data)
      adapter.store_row(task_list: "codec", id: i.to_s, type: "FetchFile", data: text)
      got = Task::Task.find("codec", i.to_s).data
      expected = JSON.parse(text).transform_keys(&:to_sym)
      expect(got).to eq(expected), "text #{text}"
      expect(got.keys).to eq(expected.keys)
    end
  end

  it "reads whitespace, escapes and number forms other writers use" do
    text = %( { "a" : [ 1E2 , -0 , 0.5e-1 , "\\u00e9\\ud83d\\ude00\\/" ] , "b":{"c":null} } )
    adapter.store_row(task_list: "codec", id: "w", type: "FetchFile", data: text)
    expect(Task::Task.find("codec", "w").data).to eq(JSON.parse(text).transform_keys(&:to_sym))
  end

  it "refuses data nested deeper than JSON.generate allows, or that contains itself" do
    deep = [1]
    120.times { deep = [deep] }
    expect { FetchFile.new(task_list: "codec", id: "d", data: { deep: deep }).save }
      .to raise_error(Task::Error::BadData, /nested deeper than 100/)
    loop_hash = {}
    loop_hash[:self] = loop_hash
    expect { FetchFile.new(task_list: "codec", id: "l", data: { loop: loop_hash }).save }
      .to raise_error(Task::Error::BadData, /nested deeper/)
  end

  it "names where in the data a value cannot be stored, and stores nothing" do
    bad = "\xFF".dup.force_encoding("UTF-8")
    task = FetchFile.new(task_list: "codec", id: "p", data: { outer: { "inner" => [1, bad] } })
    expect { task.save }.to raise_error(Task::Error::BadData, /at data\[:outer\]\["inner"\]\[1\]: string "\\xFF" is not valid UTF-8/)
    expect(adapter.rows("codec").to_a).to be_empty
  end

  it "stores strings of other encodings as UTF-8, as JSON.generate does" do
    latin = "caf\xE9".dup.force_encoding("ISO-8859-1")
    FetchFile.new(task_list: "codec", id: "e", data: { name: latin, latin => 1 }).save
    expect(adapter.rows("codec").first[:data]).to eq(JSON.generate({ name: latin, latin => 1 }))
    expect(Task::Task.find("codec", "e").data[:name]).to eq("café")
  end
end
