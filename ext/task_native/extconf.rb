# frozen_string_literal: true

# Writes the Makefile RubyGems runs on `gem install`: it builds the extension with cargo (no
# rb_sys gem needed) and installs task/task_native.<DLEXT> (.so; .bundle on macOS). Before
# that it checks, in seconds, what the build needs (Rust, libclang, Ruby's headers) and stops
# with the packages to install when something is missing.
require "rbconfig"

MIN_RUST = "1.88"

def stop(what, fix)
  abort <<~TEXT

    task: cannot build the native extension: #{what}.
    #{fix}
    (A precompiled gem for x86_64-linux needs none of this: see README.md, "Installing".)
  TEXT
end

root = File.expand_path("../..", __dir__)
cargo = ENV["CARGO"] || [File.join(Dir.home, ".cargo", "bin", "cargo"), "cargo"].find do |c|
  c == "cargo" ? system("cargo --version > /dev/null 2>&1") : File.executable?(c)
end
rust_fix = "Install Rust #{MIN_RUST} or newer with rustup (https://rustup.rs): Debian's and Ubuntu's rustc " \
           "packages are usually older. Then install the gem again."
stop("cargo (Rust) was not found", rust_fix) unless cargo
rustc = File.join(File.dirname(cargo), "rustc")
rustc = "rustc" unless File.executable?(rustc)
version = `"#{rustc}" --version 2>/dev/null`[/\d+\.\d+(\.\d+)?/]
stop("rustc was not found beside #{cargo}", rust_fix) unless version
if Gem::Version.new(version) < Gem::Version.new(MIN_RUST)
  stop("Rust #{version} is too old (#{MIN_RUST} or newer is needed)", "Run `rustup update stable`, or: #{rust_fix}")
end

header = File.join(RbConfig::CONFIG["rubyhdrdir"].to_s, "ruby.h")
unless File.exist?(header)
  stop("Ruby's C headers are missing (no #{header})",
       "Debian/Ubuntu: apt-get install ruby-dev (or ruby#{RbConfig::CONFIG["ruby_version"][/\d+\.\d+/]}-dev); " \
       "Fedora: dnf install ruby-devel; macOS: use a Ruby from Homebrew, rbenv or asdf.")
end

# bindgen (through rb-sys) loads libclang to read Ruby's headers; LIBCLANG_PATH, when set, is
# the only place it looks.
libclang = if ENV["LIBCLANG_PATH"].to_s.empty?
             Dir[*%w[/usr/lib/llvm-*/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib
                     /usr/local/lib /opt/homebrew/opt/llvm/lib /usr/local/opt/llvm/lib
                     /Library/Developer/CommandLineTools/usr/lib
                     /Applications/Xcode.app/Contents/Developer/Toolchains/XcodeDefault.xctoolchain/usr/lib]
                   .map { |d| "#{d}/libclang*.{so,dylib}*" }].first
           else
             Dir["#{ENV["LIBCLANG_PATH"]}/libclang*.{so,dylib,dll}*"].first
           end
unless libclang
  where = ENV["LIBCLANG_PATH"].to_s.empty? ? "the usual places" : "LIBCLANG_PATH (#{ENV["LIBCLANG_PATH"]})"
  stop("libclang was not found in #{where}",
       "Debian/Ubuntu: apt-get install libclang-dev; Fedora: dnf install clang-devel; " \
       "macOS: xcode-select --install (or brew install llvm). Or point LIBCLANG_PATH at the directory holding it.")
end

own_target = ENV["CARGO_TARGET_DIR"].to_s.empty?
target = own_target ? File.join(Dir.pwd, "target") : ENV["CARGO_TARGET_DIR"]
dlext = RbConfig::CONFIG["DLEXT"]
# The file cargo builds: a cdylib gets the platform's shared-library name (libtask_native.so on
# Linux, libtask_native.dylib on macOS, task_native.dll on Windows), not Ruby's DLEXT (.bundle).
built = "#{"lib" unless Gem.win_platform?}task_native.#{RbConfig::CONFIG["SOEXT"]}"
# A failed build leaves nothing behind in a target dir of its own (it holds hundreds of MB).
on_failure = own_target ? %( || { rm -rf "$(TARGET)"; exit 1; }) : ""
puts "task: Rust #{version} (#{cargo}), libclang #{libclang}; building with cargo " \
     "(several minutes on 2 cores; `gem install --verbose` shows cargo's progress)"

File.write("Makefile", <<~MAKE)
  CARGO = #{cargo}
  TARGET = #{target}
  sitearchdir ?= #{RbConfig::CONFIG["sitearchdir"]}

  all:
  \tCARGO_TARGET_DIR="$(TARGET)" RUBY="#{RbConfig.ruby}" "$(CARGO)" build --release --locked -p task_native --manifest-path "#{root}/Cargo.toml"#{on_failure}
  \tcp "$(TARGET)/release/#{built}" task_native.#{dlext}

  install: all
  \tmkdir -p "$(sitearchdir)/task"
  \tcp task_native.#{dlext} "$(sitearchdir)/task/task_native.#{dlext}"
  #{own_target ? "\trm -rf \"$(TARGET)\"" : ""}

  clean:
  \trm -f task_native.#{dlext}
MAKE
