# frozen_string_literal: true

# The hand-off to another worker as JSON: task.to_json (written by the extension) and
# Task::Task.from_json (parsed by it) against Ruby's own JSON on thousands of generated tasks.
module HandOff
  class Plain
    include Task::Task
  end

  module Deep
    class Nested
      include Task::Task
    end
  end

  # A task class with an initialize of its own: it sees what from_hash gives it.
  class Custom
    include Task::Task
    attr_reader :seen

    def initialize(attributes = {})
      @seen = attributes[:data]
      super
    end
  end

  # A value with a to_json of its own, written the way its author liked (spaces, key order).
  Point = Struct.new(:x, :y) do
    def to_json(*args)
      format('{ "y": %s, "x" : %s }', y.to_json(*args), x.to_json(*args))
    end
  end
end

RSpec.describe "the JSON hand-off" do
  # Values of every kind JSON.generate writes, nested; seeded, so a failure can be replayed.
  class ValueMaker
    STRINGS = ["", "plain", "é à ü", "日本語", "emoji 😀", "quote \" backslash \\ slash /", "tab\tnew\nline\r",
               "\u0000\u0001\u001f control", "\u2028\u2029 separators", "<script>alert(1)</script>", "a" * 300].freeze

    def initialize(seed)
      @r = Random.new(seed)
    end

    def string
      s = STRINGS.sample(random: @r).dup
      s << @r.rand(1000).to_s if @r.rand < 0.5
      s = s.encode("UTF-16LE") if @r.rand < 0.03 # converted to UTF-8 by both generators
      s
    end

    def scalar
      case @r.rand(12)
      when 0 then nil
      when 1 then true
      when 2 then false
      when 3 then @r.rand(-1_000_000..1_000_000)
      when 4 then @r.rand(2**64..2**80) * (@r.rand < 0.5 ? -1 : 1) # beyond 64 bits
      when 5 then [0.1, -0.0, 1.0e20, 1.5e-7, 123_456.789, 2.5, -3.0].sample(random: @r)
      when 6 then @r.rand * 10**@r.rand(-5..25)
      when 7 then string.to_sym
      else string
      end
    end

    def key
      case @r.rand(10)
      when 0 then @r.rand(100) # Integer keys are written as strings
      when 1..4 then string.to_sym
      else string
      end
    end

    def value(depth)
      return scalar if depth > 3 || @r.rand < 0.55

      if @r.rand < 0.5
        Array.new(@r.rand(0..4)) { value(depth + 1) }
      else
        hash(depth + 1)
      end
    end

    def hash(depth)
      Array.new(@r.rand(0..5)) { [key, value(depth)] }.to_h
    end

    def data
      h = Array.new(@r.rand(0..6)) { [string.to_sym, value(1)] }.to_h
      h[:"k#{@r.rand(10)}"] = "a" if @r.rand < 0.1
      h["k#{@r.rand(10)}"] = "b" if @r.rand < 0.1 # may collide with a Symbol key once written
      h[:point] = HandOff::Point.new(@r.rand(10), [1, "two"]) if @r.rand < 0.05
      h[:time] = Time.at(@r.rand(2_000_000_000)).utc if @r.rand < 0.03
      h
    end
  end

  def ruby_json(task)
    JSON.generate(JSON.parse(JSON.generate(task.as_hash)))
  end

  it "writes JSON.generate(as_json) byte for byte, and reads back what from_hash(JSON.parse) gives, for 5,000 tasks" do
    maker = ValueMaker.new(20_261_201)
    classes = [HandOff::Plain, HandOff::Deep::Nested]
    compared = native = 0
    5_000.times do |i|
      klass = classes[i % 2]
      task = klass.new(task_list: maker.string.encode("UTF-8").then { |s| s.empty? ? "list" : s },
                       id: i.even? ? i.to_s : "id #{maker.string.encode("UTF-8")}", data: maker.data)
      text = task.to_json
      native += 1 if task.send(:compact_json) # written by the extension, not Ruby's generator
      expect(text).to eq(ruby_json(task)), "task #{i}: #{task.as_hash.inspect}"
      expect(JSON.generate(task.as_json)).to eq(text)
      back = Task::Task.from_json(text)
      reference = Task::Task.from_hash(JSON.parse(text))
      expect(back.class).to eq(reference.class)
      expect(back.as_hash).to eq(reference.as_hash), "task #{i}: #{text}"
      compared += 1
    end
    expect(compared).to eq(5_000)
    # Most tasks are written natively; the rest (own to_json, keys that collide) by Ruby.
    expect(native).to be > 4_000
    report "#{native} of 5,000 generated tasks written by the extension, the others by Ruby's generator"
  end

  it "writes a large hash whose keys collide once written as Ruby's generator does" do
    data = (0...40).to_h { |i| [:"k#{i}", i] }.merge("k5" => "string key", 7 => "integer key", "7" => "string 7")
    task = HandOff::Plain.new(task_list: "l", id: "1", data: { big: data, small: { a: 1, "a" => 2 } })
    expect(task.send(:compact_json)).to be_nil
    expect(task.to_json).to eq(ruby_json(task))
    distinct = HandOff::Plain.new(task_list: "l", id: "1", data: { big: (0...40).to_h { |i| ["k#{i}", i] } })
    expect(distinct.send(:compact_json)).to eq(ruby_json(distinct))
  end

  it "raises what JSON.generate raises for data JSON cannot hold" do
    [Float::NAN, Float::INFINITY, "\xff".b.force_encoding("UTF-8")].each do |bad|
      task = HandOff::Plain.new(task_list: "l", id: "1", data: { v: bad })
      ruby_error = (JSON.generate(task.as_hash) rescue $!) # rubocop:disable Style/RescueModifier
      expect(ruby_error).to be_a(StandardError)
      expect { task.to_json }.to raise_error(ruby_error.class)
    end
  end

  it "is what a generator state asks for inside a structure being generated" do
    task = HandOff::Plain.build(task_list: "l", id: "1", a: [1, { "b" => nil }])
    expect(JSON.generate([task, { t: task }])).to eq(JSON.generate([task.as_json, { t: task.as_json }]))
    expect(JSON.pretty_generate(task)).to eq(JSON.pretty_generate(task.as_json))
  end

  it "reads what JSON.parse reads, and refuses what it refuses, naming the problem" do
    text = '{"type":"HandOff::Plain","task_list":"l","id":"7","data":{"n":1,"s":"x","deep":{"k":[1,2.5]}}}'
    expect(Task::Task.from_json(text).as_hash).to eq(Task::Task.from_hash(JSON.parse(text)).as_hash)
    expect(Task::Task.from_json(text.encode("UTF-16LE")).as_hash).to eq(Task::Task.from_json(text).as_hash)
    expect(Task::Task.from_json(text.b).as_hash).to eq(Task::Task.from_json(text).as_hash)
    custom = '{"type":"HandOff::Custom","task_list":"l","id":"7","data":{"n":1}}'
    expect(Task::Task.from_json(custom).seen).to eq(Task::Task.from_hash(JSON.parse(custom)).seen)
    odd = '{"type":"HandOff::Plain","task_list":{"x":1},"id":7,"data":null,"extra":[{"y":2}]}'
    expect(Task::Task.from_json(odd).as_hash).to eq(Task::Task.from_hash(JSON.parse(odd)).as_hash)
    expect { Task::Task.from_json('{"type":"HandOff::Plain","data":[{"a":1}]}') }
      .to raise_error(ArgumentError, /data must be a Hash/)
    expect { Task::Task.from_json('{"type":"No::Such","data":{}}') }.to raise_error(NameError)
    expect { Task::Task.from_json('{"data":{}}') }.to raise_error(ArgumentError, /needs a :type/)
    expect { Task::Task.from_json('{"type": "HandOff::Plain", "id": ') }.to raise_error(JSON::ParserError, /not a task's JSON/)
    expect { Task::Task.from_json("[1]") }.to raise_error(JSON::ParserError)
    expect { Task::Task.from_json(nil) }.to raise_error(ArgumentError, /from_json takes a String/)
    expect { Task::Task.from_json('{"type":"String","task_list":"l","id":"1","data":{}}') }
      .to raise_error(Task::Error::InvalidType, /String/)
  end
end
