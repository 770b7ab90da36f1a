# frozen_string_literal: true

require "spec_helper"

# The extension's calls into Ruby's C API that bypass magnus (and its rb_protect) live in one
# module, ext/task_native/src/raw.rs, whose head states the rules they follow; everything
# else goes through magnus or through raw.rs's functions.
RSpec.describe "raw calls into Ruby's C API" do
  let(:src) { File.expand_path("../ext/task_native/src", __dir__) }

  it "are all made in raw.rs" do
    outside = Dir[File.join(src, "*.rs")].reject { |f| File.basename(f) == "raw.rs" }.flat_map do |file|
      File.readlines(file).each_with_index.filter_map do |line, i|
        "#{File.basename(file)}:#{i + 1}: #{line.strip}" if line.match?(/\brb_sys::rb_\w+\s*\(|\brb_sys::rb_\w+\b(?!::)/) && !line.strip.start_with?("//")
      end
    end
    expect(outside).to eq([])
  end

  it "has its rules stated once, at the top of raw.rs" do
    head = File.read(File.join(src, "raw.rs")).lines.take_while { |l| l.start_with?("//!") }.join
    expect(head).to match(/GVL/).and match(/raise/).and match(/protect/)
  end

  it "gives rb_nogvl its two data pointers from one raw pointer" do
    raw = File.read(File.join(src, "nogvl.rs"))
    expect(raw).not_to match(/&call\.unblock as \*const/)
    expect(raw).to match(/addr_of(?:_mut)?!\(\(\*\w+\)\.unblock\)|&raw const \(\*\w+\)\.unblock/)
  end
end
