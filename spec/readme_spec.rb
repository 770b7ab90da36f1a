# frozen_string_literal: true

# Runs the README's Ruby examples as written, in order, in a fresh process against the
# Cassandra node, and checks every "# => value" comment in them.
RSpec.describe "README.md" do
  it "runs its usage examples as written" do
    readme = File.read(File.expand_path("../README.md", __dir__))
    blocks = readme.scan(/^```ruby\n(.*?)^```$/m).flatten
    expect(blocks.size).to be >= 4

    checks = 0
    program = blocks.map do |block|
      block.lines.map do |line|
        next line unless (m = line.match(/\A(\s*)(\S.*?)\s+# => (.+)\n?\z/))

        checks += 1
        "#{m[1]}__check__((#{m[2]}), (#{m[3]}), #{m[2].dump})\n"
      end.join
    end.join("\n")
    expect(checks).to be >= 15

    prelude = <<~RUBY
      require "json"
      $checked = 0
      def __check__(actual, expected, code)
        raise "README: \#{code} gave \#{actual.inspect}, the README says \#{expected.inspect}" unless actual == expected
        $checked += 1
      end
      at_exit { puts "checked \#{$checked}" }
    RUBY
    lib = File.expand_path("../lib", __dir__)
    out = IO.popen([RbConfig.ruby, "-I", lib, "-e", prelude + program], err: %i[child out], &:read)
    expect($?.success?).to be(true), out
    expect(out).to include("checked #{checks}")
  end
end
