# frozen_string_literal: true

# Writes the Makefile RubyGems runs on `gem install`: it builds the extension with cargo (no
# rb_sys gem needed) and installs task/task_native.<DLEXT> (.so; .bundle on macOS).
require "rbconfig"

root = File.expand_path("../..", __dir__)
cargo = ENV["CARGO"] || [File.join(Dir.home, ".cargo", "bin", "cargo"), "cargo"].find do |c|
  c == "cargo" ? system("cargo --version > /dev/null 2>&1") : File.executable?(c)
end
abort "task: cargo (Rust) is needed to build this gem's native extension; install it from https://rustup.rs" unless cargo

own_target = ENV["CARGO_TARGET_DIR"].to_s.empty?
target = own_target ? File.join(Dir.pwd, "target") : ENV["CARGO_TARGET_DIR"]
dlext = RbConfig::CONFIG["DLEXT"]
# The file cargo builds: a cdylib gets the platform's shared-library name (libtask_native.so on
# Linux, libtask_native.dylib on macOS, task_native.dll on Windows), not Ruby's DLEXT (.bundle).
built = "#{"lib" unless Gem.win_platform?}task_native.#{RbConfig::CONFIG["SOEXT"]}"

File.write("Makefile", <<~MAKE)
  CARGO = #{cargo}
  TARGET = #{target}
  sitearchdir ?= #{RbConfig::CONFIG["sitearchdir"]}

  all:
  \tCARGO_TARGET_DIR="$(TARGET)" RUBY="#{RbConfig.ruby}" "$(CARGO)" build --release --locked -p task_native --manifest-path "#{root}/Cargo.toml"
  \tcp "$(TARGET)/release/#{built}" task_native.#{dlext}

  install: all
  \tmkdir -p "$(sitearchdir)/task"
  \tcp task_native.#{dlext} "$(sitearchdir)/task/task_native.#{dlext}"
  #{own_target ? "\trm -rf \"$(TARGET)\"" : ""}

  clean:
  \trm -f task_native.#{dlext}
MAKE
