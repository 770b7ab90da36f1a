# frozen_string_literal: true

RSpec.describe "generators" do
  let(:fixed) do
    Class.new do
      include Task::Generator

      def initialize(tasks)
        @tasks = tasks
      end

      def each(&block)
        @tasks.each(&block)
      end
    end
  end

  let(:a) { fixed.new([FetchFile.build(task_list: "g", id: "a1"), FetchFile.build(task_list: "g", id: "a2")]) }
  let(:b) { fixed.new([FetchFile.build(task_list: "g", id: "b1")]) }

  describe Task::Generator do
    it "is Enumerable, and append combines generators in order" do
      expect(a.map(&:id)).to eq(%w[a1 a2])
      combined = a.append(b)
      expect(combined).to be_a(Task::Generators::CombinedGenerator)
      expect(combined.map(&:id)).to eq(%w[a1 a2 b1])
      expect(combined.append(a).map(&:id)).to eq(%w[a1 a2 b1 a1 a2])
    end
  end

  describe Task::Generators::CombinedGenerator do
    it "is a value object: equal when its generators are equal" do
      expect(described_class.new([a, b])).to eq(described_class.new([a, b]))
      expect(described_class.new([a, b]).hash).to eq(described_class.new([a, b]).hash)
      expect(described_class.new([a, b])).not_to eq(described_class.new([b, a]))
      expect(described_class.new([a]).generators).to eq([a])
    end
  end

  describe Task::Generators::ExistingTasks do
    it "yields the stored tasks of its list, and is a value object" do
      FetchFile.create(task_list: "left", id: "2")
      FetchFile.create(task_list: "left", id: "1")
      gen = described_class.new("left")
      expect(gen.map(&:id)).to eq(%w[1 2])
      expect(gen).to eq(described_class.new("left"))
      expect(gen).not_to eq(described_class.new("right"))
      expect(gen.task_list).to eq("left")
      expect(gen.append(a).map(&:id)).to eq(%w[1 2 a1 a2])
    end
  end
end

RSpec.describe Task::Tasks::CompositeTask do
  it "executes every child, completes each, and returns their results" do
    %w[1 2 3].each { |i| Jobs::Cleanup::DeleteItem.create(task_list: "children", id: i, item_id: i) }
    composite = described_class.build(task_list: "parents", child_task_list: "children")
    expect(composite.execute(suffix: "?")).to eq(["deleted 1?", "deleted 2?", "deleted 3?"])
    expect(Task::Task.all("children").to_a).to be_empty
  end

  it "leaves a child that failed, and those after it, stored" do
    Jobs::Cleanup::DeleteItem.create(task_list: "kids", id: "1", item_id: 1)
    FailingTask.create(task_list: "kids", id: "2")
    Jobs::Cleanup::DeleteItem.create(task_list: "kids", id: "3", item_id: 3)
    composite = described_class.build(task_list: "parents", child_task_list: "kids")
    expect { composite.execute }.to raise_error(RuntimeError, "boom 2")
    expect(Task::Task.all("kids").map(&:id).to_a).to eq(%w[2 3])
  end

  it "round-trips through as_hash like any task" do
    composite = described_class.build(task_list: "p", child_task_list: "c")
    expect(Task::Task.from_hash(composite.as_hash).child_task_list).to eq("c")
  end
end
