# frozen_string_literal: true

require "task/display"

RSpec.describe Task::Display do
  def visible(s) = described_class.visible(s)

  it "leaves ordinary text, accents, CJK, emoji and backslashes as they are" do
    s = "emails-é-日本-🚀 a\\b"
    expect(visible(s)).to eq(s)
    expect(visible(s).encoding).to eq(Encoding::UTF_8)
  end

  it "shows C0 controls and DEL as escapes" do
    expect(visible("a\e[2Jb\a")).to eq("a\\e[2Jb\\a")
    expect(visible("\0\b\t\n\v\f\r")).to eq("\\0\\b\\t\\n\\v\\f\\r")
    expect(visible("x\u0001y\u001Fz\u007F")).to eq("x\\u0001y\\u001Fz\\u007F")
  end

  it "shows C1 controls as escapes" do
    expect(visible("a\u0085b\u009Bc")).to eq("a\\u0085b\\u009Bc")
  end

  it "shows every bidi control as an escape" do
    bidi = [0x061C, 0x200E, 0x200F, *0x202A..0x202E, *0x2066..0x2069]
    bidi.each do |cp|
      expect(visible("a#{cp.chr(Encoding::UTF_8)}b")).to eq(format("a\\u%04Xb", cp))
    end
    expect(visible("invoice\u202Efdp.exe")).to eq("invoice\\u202Efdp.exe")
  end

  it "shows bytes that are not UTF-8 as \\xNN, in UTF-8 and binary strings alike" do
    expect(visible("ok\xFF\xFE".dup.force_encoding("UTF-8"))).to eq("ok\\xFF\\xFE")
    expect(visible("ok\xFF\e".b)).to eq("ok\\xFF\\e")
    expect(visible("caf\u00e9".b)).to eq("café")
  end

  it "converts other encodings and takes non-strings" do
    expect(visible("a\e".encode("UTF-16LE"))).to eq("a\\e")
    expect(visible(nil)).to eq("")
    expect(visible(42)).to eq("42")
    expect(visible(:"x\u202E")).to eq("x\\u202E")
  end

  it "does not change its argument, frozen or not" do
    s = +"a\eb"
    visible(s)
    expect(s).to eq("a\eb")
    expect(visible("frozen\e".freeze)).to eq("frozen\\e")
  end
end
