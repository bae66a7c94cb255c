# Prints the shell commands a deploy-tool recipe from scripts/ runs on the
# server, rendered from the recipe file itself, so that the end-to-end replays
# of Mina, Deployer and Ansible deploys run exactly what the recipes would.
# None of the three tools is packaged for Debian; their DSLs are stubbed here
# only as far as the recipes use them.
#
#   ruby recipe_commands.rb mina     FILE TASK       key=value...
#   ruby recipe_commands.rb deployer FILE TASK       key=value...
#   ruby recipe_commands.rb ansible  FILE TASK-NAME  key=value...

require "yaml"

tool, file, wanted, *pairs = ARGV
vars = pairs.to_h { |pair| pair.split("=", 2) }

# Mina 1.x: set/fetch with lambdas, namespace/task/desc, comment/command.
class MinaStub
  def initialize(vars)
    @vars = vars
    @tasks = {}
    @namespaces = []
    @commands = []
  end

  def set(key, value)
    @vars[key.to_s] = value unless @vars.key?(key.to_s)
  end

  def fetch(key)
    value = @vars.fetch(key.to_s)
    value.respond_to?(:call) ? instance_exec(&value) : value
  end

  def namespace(name)
    @namespaces.push(name)
    yield
    @namespaces.pop
  end

  def desc(_text); end

  def comment(_text); end

  def task(name, &body)
    @tasks[(@namespaces + [name]).join(":")] = body
  end

  def command(text)
    @commands << text
  end

  def commands_of(task)
    instance_exec(&@tasks.fetch(task))
    @commands
  end
end

def render(template, vars)
  8.times { template = template.gsub(/\{\{\s*(\w+)\s*\}\}/) { vars.fetch(Regexp.last_match(1)) } }
  template
end

commands =
  case tool
  when "mina"
    stub = MinaStub.new(vars)
    stub.instance_eval(File.read(file), file)
    stub.commands_of(wanted)
  when "deployer"
    php = File.read(file)
    php.scan(/^set\('(\w+)',\s*'([^']*)'\);/) { |key, value| vars[key] ||= value }
    body = php[/task\('#{Regexp.escape(wanted)}',\s*function \(\) \{(.*?)^\}\);/m, 1] or abort "no task #{wanted}"
    body.scan(/run\('([^']*)'\)/).flatten.map { |cmd| render(cmd, vars) }
  when "ansible"
    tasks = YAML.load_file(file).flat_map { |t| [t, *t["block"], *t["always"]] }
    tasks.select { |t| t["name"] == wanted && t["ansible.builtin.command"] }
         .map { |t| render(t["ansible.builtin.command"], vars) }
  else
    abort "usage: recipe_commands.rb mina|deployer|ansible FILE TASK key=value..."
  end

abort "#{file}: task #{wanted} runs no command" if commands.empty?
puts commands
