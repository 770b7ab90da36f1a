# frozen_string_literal: true

require "yaml"

module Task
  class CLI
    # A settings file (--config) or an application file (-r) that cannot be used: the command
    # says which and why on one line, and exits with status 2.
    class SettingsError < StandardError; end

    # Reading --config files and loading -r files, each problem a SettingsError naming the
    # file.
    module Settings
      module_function

      # The adapter options of a YAML settings file, Symbol-keyed.
      def read_config(file)
        text = begin
          File.read(file, mode: "r:UTF-8")
        rescue SystemCallError, IOError => e
          raise SettingsError, "#{file}: cannot read it: #{e.message.sub(/ @ .*\z/m, "")}"
        end
        unless text.valid_encoding?
          line = text.each_line.find_index { |l| !l.valid_encoding? }.to_i + 1
          raise SettingsError, "#{file}: not UTF-8 text (invalid bytes on line #{line})"
        end
        check_options(file, parse(file, text))
      end

      def parse(file, text)
        YAML.safe_load(text, filename: file) || {}
      rescue Psych::SyntaxError => e
        raise SettingsError, "#{file}: line #{e.line} column #{e.column}: #{[e.problem, e.context].compact.join(" ")}"
      rescue Psych::DisallowedClass => e
        name = e.message[/class: (\S+)/, 1] || "value"
        raise SettingsError, "#{file}: holds a #{name}, which is not an option value " \
                             "(only strings, numbers, booleans, lists and mappings; quote it to make it a string)"
      rescue Psych::BadAlias => e
        raise SettingsError, "#{file}: YAML aliases are not read (#{e.message}); write the value out"
      rescue Psych::Exception => e
        raise SettingsError, "#{file}: #{e.message}"
      end

      def check_options(file, loaded)
        unless loaded.is_a?(Hash)
          raise SettingsError, "#{file}: expected a mapping of adapter options, got #{describe(loaded)}"
        end

        bad = loaded.keys.find { |k| !k.is_a?(String) }
        raise SettingsError, "#{file}: option names must be strings, got #{bad.inspect}" unless bad.nil?

        settings = loaded.transform_keys(&:to_sym)
        begin
          # Checks the file's own options and values (nothing connects yet).
          DataInterface::CassandraAdapter.new(**settings)
        rescue ArgumentError, TypeError => e
          raise SettingsError, "#{file}: #{e.message}"
        end
        settings
      end

      def describe(value)
        case value
        when Array then "a list"
        when String then "a string"
        else value.class.name
        end
      end

      # Requires the application file +given+ (as written after -r).
      def require_file(given)
        path = File.expand_path(given)
        require path
      rescue LoadError => e
        raise SettingsError, "-r #{given}: cannot load it: no such file" if [path, "#{path}.rb"].include?(e.path)

        raise SettingsError, "-r #{given}: #{e.class}#{location(e, path)}: #{first_line(e)}"
      rescue ScriptError, StandardError => e
        raise SettingsError, "-r #{given}: #{e.class}#{location(e, path) unless e.is_a?(SyntaxError)}: #{first_line(e)}"
      end

      # Where the error was raised: the innermost line of the application's file +path+, else
      # the innermost line outside Ruby's own internals.
      def location(error, path)
        places = (error.backtrace_locations || []).reject { |l| l.path.to_s.start_with?("<internal:") }
        where = places.find { |l| l.absolute_path == path } || places.first
        where ? " at #{where.path}:#{where.lineno}" : ""
      end

      # The first line of its message (without did_you_mean's suggestions or code snippets).
      def first_line(error)
        text = error.respond_to?(:original_message) ? error.original_message : error.message
        text.to_s.lines.map(&:strip).reject(&:empty?).first.to_s
      end
    end
  end
end
