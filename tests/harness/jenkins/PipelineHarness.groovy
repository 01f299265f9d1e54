// A small declarative-pipeline interpreter for testing the generated Jenkinsfile without a
// Jenkins controller (none is installable offline), in the spirit of JenkinsPipelineUnit.
//
// The REAL Jenkinsfile is evaluated by the real Groovy parser (GroovyShell): `pipeline` is bound
// as a closure and each block's closure gets a builder object as its delegate
// (Closure.DELEGATE_FIRST). The model is then executed the way Jenkins does it:
//   - agent, options, triggers, tools and parameters are recorded (triggers with evaluated args);
//   - environment is evaluated in order (GStrings, env.X, credentials('ID') from the fake
//     secrets the caller passes in; username/password credentials also set X_USR and X_PSW);
//   - stages run in order; a stage's `when` is honoured (branch, buildingTag, tag, triggeredBy,
//     changeRequest, environment, equals, expression, not, allOf, anyOf); after a failure the
//     remaining stages are skipped, as Jenkins does;
//   - `sh` really runs, like Jenkins' `sh` on a Unix agent (`/bin/sh -xe script`, or the script's
//     own #! line), in the workspace with the accumulated environment; a non-zero exit fails the
//     stage and the build;
//   - post conditions (always, changed, fixed, regression, aborted, failure, success, unstable,
//     unsuccessful, cleanup) run in Jenkins' order, for stages and the pipeline;
//   - withCredentials, withEnv, dir, script, timeout, retry, catchError, error, unstable, echo,
//     readFile, writeFile, fileExists and isUnix behave like the real steps;
//   - functions the Jenkinsfile defines run when a step calls them, their steps in the caller's
//     context, as Jenkins runs them;
//   - steps that need a controller or plugin (junit, archiveArtifacts, input, cleanWs, stash,
//     mail, ...) are RECORDED, never counted as run; junit and archiveArtifacts check that the
//     files they name exist (junit also counts the tests and failures) and record that;
//   - tools the caller declares unavailable (e.g. docker: "no Docker daemon") make the `sh`
//     steps that call them NOT RUN and recorded as such; a stage whose only steps were not run
//     is reported as not run, never as passed.
// The last line printed is a JSON summary (see PipelineHarness.summary()).

import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import java.nio.file.FileSystems
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.PathMatcher
import java.nio.file.Paths

class PipelineFailure extends RuntimeException {
    PipelineFailure(String message) { super(message) }
}

/** Jenkins' `env`: layered (pipeline, stage, withEnv/withCredentials); `env.X = v` is global. */
class EnvVars extends GroovyObjectSupport {
    List<Map<String, String>> layers = [[:]]

    Object getProperty(String name) {
        if (name == 'environment') return merged()
        if (name == 'layers') return layers
        for (int i = layers.size() - 1; i >= 0; i--) {
            if (layers[i].containsKey(name)) return layers[i][name]
        }
        return null
    }

    void setProperty(String name, Object value) { layers[0][name] = value == null ? null : value.toString() }
    Object getAt(String name) { getProperty(name) }
    void putAt(String name, Object value) { setProperty(name, value) }
    void setLocal(String name, Object value) { layers[-1][name] = value == null ? null : value.toString() }
    boolean has(String name) { layers.any { it.containsKey(name) } }
    void push(Map<String, String> layer = [:]) { layers << layer }
    void pop() { layers.remove(layers.size() - 1) }

    Map<String, String> merged() {
        Map<String, String> all = [:]
        layers.each { all.putAll(it) }
        all.findAll { k, v -> v != null }
    }

    Map<String, String> getEnvironment() { merged() }
}

/** Script-level variables fall back to env vars, as in Jenkins ("${BRANCH_NAME}"). */
class PipelineBinding extends Binding {
    EnvVars env
    Object steps  // while a Jenkinsfile function runs: the step context that called it
    PipelineBinding(EnvVars env) { this.env = env }

    Object getVariable(String name) {
        if (super.hasVariable(name)) return super.getVariable(name)
        if (env.has(name)) return env.getProperty(name)
        // A step called inside a function defined in the Jenkinsfile (`def f() { sh ... }`):
        // the Script finds no such method and looks for a closure of that name here.
        if (steps != null && steps.respondsTo(name)) return { Object[] args -> steps.invokeMethod(name, args) }
        throw new MissingPropertyException(name, this.getClass())
    }

    boolean hasVariable(String name) { super.hasVariable(name) || env.has(name) }
}

/** A recorded call: options, triggers, tools, agent details, unknown steps. */
class Call {
    String name
    List args
    Call(String name, Object args) { this.name = name; this.args = (args as List) ?: [] }
    String toString() {
        def shown = args.findAll { !(it instanceof Closure) }.collect { fmt(it) }
        "${name}(${shown.join(', ')})"
    }
    static String fmt(Object v) {
        if (v instanceof Map) return v.collect { k, x -> "${k}: ${fmt(x)}" }.join(', ')
        if (v instanceof CharSequence) return "'${v}'"
        if (v instanceof List) return '[' + v.collect { fmt(it) }.join(', ') + ']'
        return String.valueOf(v)
    }
}

/** Records every call made in a block (options, triggers, tools, agent { ... }). */
class Recorder {
    List<Call> calls = []
    def methodMissing(String name, Object args) {
        def call = new Call(name, args)
        // Nested descriptors such as buildDiscarder(logRotator(...)) arrive as Call arguments.
        calls.removeAll { c -> call.args.any { it.is(c) } }
        calls << call
        return call
    }
}

class Condition {
    String description
    Closure<Boolean> test
    Condition(String description, Closure<Boolean> test) { this.description = description; this.test = test }
    String toString() { description }
}

/** `when { ... }`: builds the condition tree; evaluated later against the build context. */
class WhenBuilder {
    PipelineHarness h
    List<Condition> conditions = []
    Map<String, Object> flags = [:]
    WhenBuilder(PipelineHarness h) { this.h = h }

    private List<Condition> nested(Closure body) {
        def b = new WhenBuilder(h)
        h.delegateTo(body, b)
        b.conditions
    }

    void beforeAgent(boolean v) { flags.beforeAgent = v }
    void beforeInput(boolean v) { flags.beforeInput = v }
    void beforeOptions(boolean v) { flags.beforeOptions = v }

    void branch(String pattern) { branch(pattern: pattern) }
    void branch(Map spec) {
        conditions << new Condition("branch '${spec.pattern}'", { ->
            h.compare(h.env.BRANCH_NAME, spec.pattern as String, (spec.comparator ?: 'GLOB') as String)
        })
    }
    void buildingTag() { conditions << new Condition('buildingTag()', { -> h.env.TAG_NAME as boolean }) }
    void tag(String pattern) { tag(pattern: pattern) }
    void tag() { buildingTag() }
    void tag(Map spec) {
        conditions << new Condition("tag '${spec.pattern}'" + (spec.comparator ? " (${spec.comparator})" : ''), { ->
            h.env.TAG_NAME && h.compare(h.env.TAG_NAME, spec.pattern as String, (spec.comparator ?: 'GLOB') as String)
        })
    }
    void changeRequest(Map spec = [:]) {
        conditions << new Condition('changeRequest()', { ->
            h.env.CHANGE_ID && spec.every { k, v -> h.env."CHANGE_${k.toString().toUpperCase()}" == v }
        })
    }
    void triggeredBy(String cause) { triggeredBy(cause: cause) }
    void triggeredBy(Map spec) {
        conditions << new Condition("triggeredBy '${spec.cause}'", { ->
            h.causes.any { c ->
                c.name.contains(spec.cause as String) && (spec.detail == null || c.detail == spec.detail)
            }
        })
    }
    void environment(Map spec) {
        conditions << new Condition("environment ${spec.name} == '${spec.value}'", { ->
            h.env.getProperty(spec.name as String) == spec.value
        })
    }
    void equals(Map spec) {
        conditions << new Condition("equals ${spec.expected}", { -> spec.expected == spec.actual })
    }
    void expression(Closure body) {
        conditions << new Condition('expression { ... }', { ->
            def steps = new StepContext(h, 'when')
            h.delegateTo(body, steps) as boolean
        })
    }
    void not(Closure body) {
        def inner = nested(body)
        h.require(inner.size() == 1, "when: not { } takes exactly one condition, got ${inner.size()}")
        conditions << new Condition("not { ${inner[0]} }", { -> !inner[0].test.call() })
    }
    void allOf(Closure body) {
        def inner = nested(body)
        conditions << new Condition("allOf { ${inner.join('; ')} }", { -> inner.every { it.test.call() } })
    }
    void anyOf(Closure body) {
        def inner = nested(body)
        conditions << new Condition("anyOf { ${inner.join('; ')} }", { -> inner.any { it.test.call() } })
    }
    def methodMissing(String name, Object args) {
        throw new PipelineFailure("when: unsupported condition '${name}'")
    }
}

/** `environment { X = 'v'; Y = credentials('ID') }`: assignments are evaluated in order. */
class EnvironmentBuilder {
    PipelineHarness h
    Map<String, String> values
    String scope
    EnvironmentBuilder(PipelineHarness h, Map<String, String> values, String scope) {
        this.h = h; this.values = values; this.scope = scope
    }

    Object credentials(String id) { new CredentialRef(id) }

    void setProperty(String name, Object value) {
        if (value instanceof CredentialRef) {
            def secret = h.credential(value.id, scope)
            h.recordStep(scope, "${name} = credentials('${value.id}')", 'bound a fake secret given by the test')
            if (secret instanceof Map) {
                values[name] = "${secret.username}:${secret.password}".toString()
                values["${name}_USR".toString()] = secret.username as String
                values["${name}_PSW".toString()] = secret.password as String
            } else {
                values[name] = secret as String
            }
        } else {
            values[name] = value == null ? null : value.toString()
        }
    }

    Object getProperty(String name) {
        if (name == 'env') return h.env
        if (values.containsKey(name)) return values[name]
        if (h.env.has(name)) return h.env.getProperty(name)
        throw new MissingPropertyException(name, EnvironmentBuilder)
    }
}

class CredentialRef {
    String id
    CredentialRef(String id) { this.id = id }
}

class PostBuilder {
    static final List<String> ORDER = ['always', 'changed', 'fixed', 'regression', 'aborted', 'failure',
                                       'success', 'unstable', 'unsuccessful', 'cleanup']
    Map<String, Closure> blocks = [:]
    def methodMissing(String name, Object args) {
        if (!(name in ORDER)) throw new PipelineFailure("post: unknown condition '${name}'")
        blocks[name] = (args as List)[0] as Closure
    }
}

class StageModel {
    String name
    List<Condition> when = []
    Map whenFlags = [:]
    Closure environment
    Closure steps
    PostBuilder post
    List<StageModel> stages = []
    List<StageModel> parallel = []
    List<Call> options = []
    Object agent
}

/** `stage('X') { ... }` and `stages { ... }` / `parallel { ... }` containers. */
/** What the `pipeline` and `stage` blocks share: agent keywords, and unknown sections refused. */
abstract class SectionBuilder {
    PipelineHarness h
    abstract String where()
    def getAny() { 'any' }
    def getNone() { 'none' }
    def methodMissing(String name, Object args) {
        throw new PipelineFailure("${where()}: unknown section '${name}'")
    }
}

class StageBuilder extends SectionBuilder {
    StageModel model
    StageBuilder(PipelineHarness h, StageModel model) { this.h = h; this.model = model }
    String where() { "stage '${model.name}'" }

    void when(Closure body) {
        def b = new WhenBuilder(h)
        h.delegateTo(body, b)
        model.when = b.conditions
        model.whenFlags = b.flags
    }
    void environment(Closure body) { model.environment = body }
    void steps(Closure body) { model.steps = body }
    void post(Closure body) { def b = new PostBuilder(); h.delegateTo(body, b); model.post = b }
    void options(Closure body) { model.options = h.recordCalls(body) }
    void tools(Closure body) { model.options += h.recordCalls(body) }
    void agent(Object spec) { model.agent = h.agentSpec(spec) }
    void input(Closure body) { model.options << new Call('input', [body]) }
    void failFast(boolean v) {}
    void stages(Closure body) { model.stages = h.collectStages(body) }
    void parallel(Closure body) { model.parallel = h.collectStages(body) }
}

class StagesBuilder {
    PipelineHarness h
    List<StageModel> stages = []
    StagesBuilder(PipelineHarness h) { this.h = h }
    void stage(String name, Closure body) {
        def model = new StageModel(name: name)
        h.delegateTo(body, new StageBuilder(h, model))
        h.require(model.steps || model.stages || model.parallel,
                  "stage '${name}' has no steps, stages or parallel")
        stages << model
    }
    def methodMissing(String name, Object args) {
        throw new PipelineFailure("stages: expected stage('NAME') { ... }, got '${name}'")
    }
}

class PipelineBuilder extends SectionBuilder {
    PipelineBuilder(PipelineHarness h) { this.h = h }
    String where() { 'pipeline' }
    void agent(Object spec) { h.agent = h.agentSpec(spec) }
    void options(Closure body) { h.options = h.recordCalls(body) }
    void triggers(Closure body) { h.triggers = h.recordCalls(body) }
    void tools(Closure body) { h.tools = h.recordCalls(body) }
    void parameters(Closure body) {
        h.recordCalls(body).each { c ->
            def spec = c.args ? c.args[0] : [:]
            if (spec instanceof Map && spec.name) {
                def given = h.params[spec.name]
                h.params[spec.name] = given != null ? given : spec.defaultValue
            }
        }
    }
    void environment(Closure body) { h.pipelineEnvironment = body }
    void stages(Closure body) { h.stages = h.collectStages(body) }
    void post(Closure body) { def b = new PostBuilder(); h.delegateTo(body, b); h.post = b }
    void libraries(Closure body) {}
}

/** The delegate of `steps`, `post` blocks, `script` and `expression`. */
class StepContext {
    PipelineHarness h
    String stage
    String dir
    StepContext(PipelineHarness h, String stage, String dir = null) {
        this.h = h; this.stage = stage; this.dir = dir ?: h.workspace.toString()
    }

    Object getProperty(String name) {
        switch (name) {
            case 'env': return h.env
            case 'params': return h.params
            case 'currentBuild': return h.currentBuild
            case 'h': return h
            case 'stage': return stage
            case 'dir': return dir
        }
        if (h.env.has(name)) return h.env.getProperty(name)
        throw new MissingPropertyException(name, StepContext)
    }

    private Object body(Closure c, StepContext ctx = this) { h.delegateTo(c, ctx) }

    // --- steps that really run -------------------------------------------------------------
    Object sh(String script) { sh(script: script) }
    Object sh(Map spec) { h.runShell(this, spec) }
    void echo(Object message) { h.log("${message}") }
    void error(String message) { throw new PipelineFailure(message) }
    void unstable(Object message) {
        h.log("WARNING: ${message instanceof Map ? message.message : message}")
        h.mark('UNSTABLE')
    }
    Object script(Closure c) { body(c) }
    boolean isUnix() { true }
    boolean fileExists(String path) { new File(dir, path).exists() }
    String readFile(String path) { new File(dir, path).text }
    String readFile(Map spec) { readFile(spec.file as String) }
    void writeFile(Map spec) {
        def f = new File(dir, spec.file as String)
        f.parentFile?.mkdirs()
        f.text = spec.text as String
    }
    Object dir(String path, Closure c) {
        def target = new File(path).isAbsolute() ? new File(path) : new File(dir, path)
        target.mkdirs()
        body(c, new StepContext(h, stage, target.canonicalPath))
    }
    Object withEnv(List<String> vars, Closure c) {
        Map<String, String> layer = [:]
        vars.each { String kv ->
            def (k, v) = kv.split('=', 2) as List
            if (k.contains('+')) {  // PATH+EXTRA=/dir prepends to PATH
                def base = k.substring(0, k.indexOf('+'))
                def current = layer[base] ?: h.env.getProperty(base)
                layer[base] = current ? "${v}:${current}".toString() : v
            } else {
                layer[k] = v
            }
        }
        h.env.push(layer)
        try { return body(c) } finally { h.env.pop() }
    }
    Object withCredentials(List bindings, Closure c) {
        Map<String, String> layer = [:]
        List<File> tempFiles = []
        bindings.each { Map b ->
            def secret = h.credential(b.credentialsId as String, stage)
            switch (b.kind) {
                case 'usernamePassword':
                    h.require(secret instanceof Map, "credential '${b.credentialsId}' is not a username/password")
                    if (b.usernameVariable) layer[b.usernameVariable] = secret.username as String
                    if (b.passwordVariable) layer[b.passwordVariable] = secret.password as String
                    break
                case 'usernameColonPassword':
                    layer[b.variable] = "${secret.username}:${secret.password}".toString()
                    break
                case 'string':
                    layer[b.variable] = secret as String
                    break
                case 'file':
                    def f = File.createTempFile('secret', '.tmp')
                    f.text = secret as String
                    tempFiles << f
                    layer[b.variable] = f.path
                    break
                default:
                    throw new PipelineFailure("withCredentials: unsupported binding ${b.kind}")
            }
        }
        h.recordStep(stage, "withCredentials(${bindings.collect { "${it.kind}('${it.credentialsId}')" }.join(', ')})",
                     'bound fake secrets given by the test')
        h.env.push(layer)
        try { return body(c) } finally { h.env.pop(); tempFiles*.delete() }
    }
    Map usernamePassword(Map spec) { [kind: 'usernamePassword'] + spec }
    Map usernameColonPassword(Map spec) { [kind: 'usernameColonPassword'] + spec }
    Map string(Map spec) { [kind: 'string'] + spec }
    Map file(Map spec) { [kind: 'file'] + spec }
    Object timeout(Map spec, Closure c) {
        h.recordStep(stage, new Call('timeout', [spec]).toString(), 'body run without a time limit')
        body(c)
    }
    Object retry(int count, Closure c) {
        PipelineFailure last = null
        for (int i = 0; i < count; i++) {
            try { return body(c) } catch (PipelineFailure e) { last = e; h.log("retry ${i + 1}/${count}: ${e.message}") }
        }
        throw last
    }
    Object catchError(Map spec = [:], Closure c) {
        try { return body(c) } catch (PipelineFailure e) {
            h.log("catchError: ${e.message}")
            h.mark((spec.buildResult ?: 'FAILURE') as String)
            return null
        }
    }

    // --- steps that need a controller or a plugin: recorded, never run -----------------------
    void junit(Map spec) {
        if (h.dryRun) { h.recordStep(stage, new Call('junit', [spec]).toString(), 'dry run'); return }
        def files = h.glob(dir, spec.testResults as String)
        if (!files) {
            h.recordStep(stage, new Call('junit', [spec]).toString(), 'no test report found')
            if (!spec.allowEmptyResults) throw new PipelineFailure("junit: no test report files were found matching ${spec.testResults}")
            return
        }
        int tests = 0, failures = 0
        files.each { f ->
            def xml = new XmlSlurper().parse(f)
            def suites = xml.name() == 'testsuite' ? [xml] : xml.testsuite.list()
            suites.each { s ->
                tests += (s.@tests.text() ?: '0') as int
                failures += ((s.@failures.text() ?: '0') as int) + ((s.@errors.text() ?: '0') as int)
            }
        }
        h.recordStep(stage, new Call('junit', [spec]).toString(),
                     "${files.size()} report(s) found: ${tests} tests, ${failures} failed or errored")
        if (failures > 0) h.mark('UNSTABLE')
    }
    void junit(String pattern) { junit(testResults: pattern) }
    void archiveArtifacts(Map spec) {
        if (h.dryRun) { h.recordStep(stage, new Call('archiveArtifacts', [spec]).toString(), 'dry run'); return }
        def files = h.glob(dir, spec.artifacts as String, spec.excludes as String)
        h.recordStep(stage, new Call('archiveArtifacts', [spec]).toString(),
                     files ? "${files.size()} file(s) found: " + files.take(5).collect { h.rel(it) }.join(', ') + (files.size() > 5 ? ', ...' : '') : 'no files found')
        if (!files && !spec.allowEmptyArchive) throw new PipelineFailure("archiveArtifacts: no artifacts found that match '${spec.artifacts}'")
    }
    void archiveArtifacts(String pattern) { archiveArtifacts(artifacts: pattern) }
    def methodMissing(String name, Object args) {
        def list = args as List
        if (h.definesFunction(name)) return h.callFunction(name, list, this)
        def call = new Call(name, list)
        if (list && list[-1] instanceof Closure) {
            h.recordStep(stage, call.toString(), 'wrapper not available here; body run')
            return body(list[-1] as Closure)
        }
        h.recordStep(stage, call.toString(), 'needs a Jenkins controller; not run')
        return null
    }
}

class PipelineHarness {
    // Build context
    Path workspace
    EnvVars env = new EnvVars()
    Map params = [:]
    List<Map> causes = []
    Map credentials = [:]
    Map<String, String> unavailable = [:]  // tool -> reason, e.g. docker -> "no Docker daemon"
    boolean dryRun = false
    List<String> shell = ['/bin/sh', '-xe']
    // Model
    Object agent
    List<Call> options = []
    List<Call> triggers = []
    List<Call> tools = []
    Closure pipelineEnvironment
    Script script  // the evaluated Jenkinsfile: its functions are callable from steps
    List<StageModel> stages = []
    PostBuilder post
    // Results
    String result = 'SUCCESS'
    Map currentBuild = [:]
    List<Map> stageResults = []
    List<Map> shRuns = []
    List<Map> recorded = []
    List<String> errors = []
    Set<String> secrets = [] as Set
    PrintStream out = System.out

    PipelineHarness(Map config) {
        workspace = Paths.get(config.workspace as String).toAbsolutePath().normalize()
        dryRun = config.dryRun as boolean
        if (config.shell) shell = config.shell as List<String>
        unavailable = (config.unavailable ?: [:]) as Map<String, String>
        credentials = (config.credentials ?: [:]) as Map
        credentials.values().each { v ->
            if (v instanceof Map) { if (v.password) secrets << (v.password as String) } else if (v) secrets << (v as String)
        }
        params = (config.params ?: [:]) as Map
        causes = ((config.causes ?: ['BranchEventCause']) as List).collect { c ->
            c instanceof Map ? c : [name: c as String, detail: null]
        }
        Map<String, String> base = [:]
        base.putAll((config.baseEnv ?: [:]) as Map<String, String>)
        Map<String, String> context = (config.context ?: [:]) as Map<String, String>
        base.putAll(context)
        if (context.TAG_NAME && !context.BRANCH_NAME) base.BRANCH_NAME = context.TAG_NAME  // multibranch tag jobs
        base.WORKSPACE = workspace.toString()
        ['BUILD_NUMBER': '1', 'BUILD_ID': '1', 'JOB_NAME': "job/${base.BRANCH_NAME ?: 'build'}".toString(),
         'NODE_NAME': 'built-in', 'EXECUTOR_NUMBER': '0', 'JENKINS_URL': 'http://jenkins.invalid/'].each { k, v ->
            if (!base.containsKey(k)) base[k] = v
        }
        base.BUILD_TAG = "jenkins-${base.JOB_NAME.replace('/', '-')}-${base.BUILD_NUMBER}".toString()
        env.layers[0].putAll(base)
        currentBuild = [result: null, currentResult: 'SUCCESS', number: base.BUILD_NUMBER as int]
    }

    // --- evaluation -------------------------------------------------------------------------
    Object delegateTo(Closure body, Object delegate) {
        Closure c = body.rehydrate(delegate, body.owner, body.thisObject)
        c.resolveStrategy = Closure.DELEGATE_FIRST
        return c.call()
    }

    /** The steps a block calls, recorded (options, triggers, tools, parameters). */
    List recordCalls(Closure body) {
        def r = new Recorder()
        delegateTo(body, r)
        return r.calls
    }

    void require(Object ok, String message) { if (!(ok as boolean)) throw new PipelineFailure(message) }

    Object agentSpec(Object spec) {
        if (spec instanceof Closure) {
            def r = new Recorder()
            delegateTo(spec as Closure, r)
            return r.calls.collect { it.toString() }.join('; ')
        }
        return spec
    }

    List<StageModel> collectStages(Closure body) {
        def b = new StagesBuilder(this)
        delegateTo(body, b)
        b.stages
    }

    void load(File jenkinsfile) {
        def binding = new PipelineBinding(env)
        binding.setVariable('env', env)
        binding.setVariable('params', params)
        binding.setVariable('currentBuild', currentBuild)
        binding.setVariable('scm', [:])
        boolean declared = false
        binding.setVariable('pipeline', { Closure body ->
            require(!declared, 'more than one pipeline { } block')
            declared = true
            delegateTo(body, new PipelineBuilder(this))
        })
        def shell = new GroovyShell(this.class.classLoader, binding)
        script = shell.parse(jenkinsfile.getText('UTF-8'), 'Jenkinsfile')
        script.run()
        require(declared, 'no pipeline { } block: not a declarative Jenkinsfile')
        require(agent != null, "pipeline: missing 'agent' section")
        require(stages, "pipeline: missing or empty 'stages' section")
    }

    /** Functions the Jenkinsfile defines (`def name(...) { ... }`), callable from steps. */
    boolean definesFunction(String name) {
        script != null && script.class.declaredMethods.any { it.name == name }
    }

    Object callFunction(String name, List args, StepContext caller) {
        def binding = script.binding as PipelineBinding
        def saved = binding.steps
        binding.steps = caller
        try { return script.invokeMethod(name, args as Object[]) } finally { binding.steps = saved }
    }

    // --- helpers used by the builders -------------------------------------------------------
    boolean compare(String actual, String pattern, String comparator) {
        if (actual == null) return false
        switch (comparator) {
            case 'EQUALS': return actual == pattern
            case 'REGEXP': return actual ==~ pattern
            case 'GLOB': return antMatch(pattern, actual)
            default: throw new PipelineFailure("unknown comparator '${comparator}'")
        }
    }

    static boolean antMatch(String pattern, String path) {
        // Jenkins' GLOB comparator is Ant's path matching: '*' stays within a '/' segment.
        PathMatcher m = FileSystems.default.getPathMatcher('glob:' + pattern)
        if (m.matches(Paths.get(path))) return true
        return pattern.startsWith('**/') && antMatch(pattern.substring(3), path)
    }

    List<File> glob(String dir, String patterns, String excludes = null) {
        Path root = Paths.get(dir)
        if (!Files.isDirectory(root)) return []
        def includes = patterns.split(',')*.trim().findAll { it }
        def excluded = (excludes ?: '').split(',')*.trim().findAll { it }
        List<File> found = []
        root.toFile().eachFileRecurse(groovy.io.FileType.FILES) { File f ->
            String r = root.relativize(f.toPath()).toString()
            if (r.startsWith('.git/')) return
            if (includes.any { antMatch(it, r) || (it.endsWith('/**') && r.startsWith(it[0..-3])) } &&
                !excluded.any { antMatch(it, r) }) found << f
        }
        found.sort()
    }

    String rel(File f) { workspace.relativize(f.toPath().toAbsolutePath().normalize()).toString() }

    Object credential(String id, String scope) {
        if (dryRun) return credentials.containsKey(id) ? credentials[id] : [username: '****', password: '****']
        if (!credentials.containsKey(id)) {
            throw new PipelineFailure("Could not find credentials entry with ID '${id}' (${scope})")
        }
        return credentials[id]
    }

    void mark(String r) {
        def rank = ['SUCCESS': 0, 'UNSTABLE': 1, 'FAILURE': 2, 'ABORTED': 3]
        if (rank[r] > rank[result]) result = r
        currentBuild.currentResult = result
        currentBuild.result = result
    }

    String mask(String text) {
        secrets.findAll { it && it.length() >= 3 }.inject(text) { t, s -> t.replace(s, '****') }
    }

    void log(String line) { out.println(mask(line)); out.flush() }

    void recordStep(String stage, String step, String note) {
        recorded << [stage: stage, step: step, note: note]
        log("[harness] ${stage}: ${step} — ${note}")
    }

    // --- sh ---------------------------------------------------------------------------------
    Map currentStage

    Object runShell(StepContext ctx, Map spec) {
        String script = spec.script as String
        String missing = unavailable.keySet().find { tool -> script =~ /(^|[^\w.\/-])${java.util.regex.Pattern.quote(tool)}([^\w.\/]|$)/ }
        if (missing) {
            String note = "not run (${unavailable[missing]})"
            shRuns << [stage: ctx.stage, script: script, exit: null, note: note]
            recordStep(ctx.stage, "sh '${script}'", note)
            if (currentStage != null) currentStage.notRun << script
            if (spec.returnStatus) return 0
            if (spec.returnStdout) return ''
            return null
        }
        if (dryRun) {
            shRuns << [stage: ctx.stage, script: script, exit: null, note: 'dry run']
            return spec.returnStatus ? 0 : (spec.returnStdout ? '' : null)
        }
        if (currentStage != null) currentStage.ran++
        log("[Pipeline] sh${spec.label ? " (${spec.label})" : ''}")
        File tmp = File.createTempFile('jenkins-sh', '.sh')
        tmp.text = script
        List<String> command = script.startsWith('#!') ? (script.readLines()[0].substring(2).trim().split(/\s+/) as List) + [tmp.path]
                                                        : shell + [tmp.path]
        def pb = new ProcessBuilder(command).directory(new File(ctx.dir))
        pb.environment().clear()
        pb.environment().putAll(env.merged())
        pb.redirectErrorStream(true)
        long start = System.currentTimeMillis()
        Process p = pb.start()
        p.outputStream.close()
        StringBuilder captured = new StringBuilder()
        p.inputStream.newReader('UTF-8').eachLine { line ->
            if (spec.returnStdout) captured.append(line).append('\n') else log(line)
        }
        int code = p.waitFor()
        tmp.delete()
        shRuns << [stage: ctx.stage, script: script, exit: code, seconds: (System.currentTimeMillis() - start) / 1000.0]
        if (spec.returnStatus) return code
        if (code != 0) {
            if (spec.returnStdout) log(captured.toString())
            throw new PipelineFailure("script returned exit code ${code}")
        }
        return spec.returnStdout ? captured.toString() : null
    }

    // --- execution --------------------------------------------------------------------------
    Map<String, String> evaluateEnvironment(Closure body, String scope) {
        Map<String, String> values = [:]
        env.push(values)  // visible to later entries of the same block while it is evaluated
        try { delegateTo(body, new EnvironmentBuilder(this, values, scope)) } finally { env.pop() }
        values
    }

    void runPost(PostBuilder p, String stageName, String status, String previous = null) {
        if (p == null) return
        PostBuilder.ORDER.each { cond ->
            Closure block = p.blocks[cond]
            if (block == null) return
            boolean run
            switch (cond) {
                case 'always': case 'cleanup': run = true; break
                case 'success': run = status == 'SUCCESS'; break
                case 'failure': run = status == 'FAILURE'; break
                case 'unstable': run = status == 'UNSTABLE'; break
                case 'aborted': run = status == 'ABORTED'; break
                case 'unsuccessful': run = status != 'SUCCESS'; break
                case 'changed': run = previous != null && previous != status; break
                case 'fixed': run = previous != null && previous != 'SUCCESS' && status == 'SUCCESS'; break
                case 'regression': run = previous == 'SUCCESS' && status != 'SUCCESS'; break
            }
            if (!run && !dryRun) return
            log("[Pipeline] post (${stageName}) { ${cond} }")
            try {
                delegateTo(block, new StepContext(this, "${stageName} post ${cond}"))
            } catch (Exception e) {
                errors << "${stageName} post ${cond}: ${e.message}".toString()
                log("ERROR: ${e.message}")
                mark('FAILURE')
            }
        }
    }

    void runStages(List<StageModel> list, String parent = null) {
        list.each { StageModel s -> runStage(s, parent) }
    }

    void runStage(StageModel s, String parent) {
        String name = parent ? "${parent} » ${s.name}" : s.name
        Map entry = [name: name, status: null, reason: null, ran: 0, notRun: []]
        stageResults << entry
        if (result == 'FAILURE' && !dryRun) {
            entry.status = 'SKIPPED'
            entry.reason = 'skipped due to earlier failure(s)'
            log("Stage \"${name}\" skipped due to earlier failure(s)")
            return
        }
        if (s.when && !dryRun) {
            boolean ok
            try {
                ok = s.when.every { it.test.call() }
            } catch (PipelineFailure e) {
                entry.status = 'FAILURE'; entry.reason = "when: ${e.message}"
                errors << "${name}: ${e.message}".toString(); mark('FAILURE')
                return
            }
            if (!ok) {
                entry.status = 'SKIPPED'
                entry.reason = 'when: ' + s.when.join(' && ')
                log("Stage \"${name}\" skipped due to when conditional")
                return
            }
        }
        log("[Pipeline] stage (${name})")
        // A stage's `input` (an approval) needs a controller and a person: recorded, and the
        // stage goes on as if approved.
        s.options.findAll { it.name == 'input' }.each { Call c ->
            def r = new Recorder()
            delegateTo(c.args[0] as Closure, r)
            recordStep(name, "input(${r.calls.join(', ')})", 'approval: recorded, taken as given')
        }
        Map<String, String> stageEnv = [STAGE_NAME: s.name]
        env.push(stageEnv)
        Map previousStage = currentStage
        currentStage = entry
        String before = result
        result = 'SUCCESS'  // the stage's own status; merged into the build's below
        try {
            if (s.environment) stageEnv.putAll(evaluateEnvironment(s.environment, name))
            if (s.steps) delegateTo(s.steps, new StepContext(this, name))
            if (s.stages) runStages(s.stages, name)
            if (s.parallel) runStages(s.parallel, name)  // sequentially: enough for a test
        } catch (Exception e) {  // PipelineFailure, or a Groovy error in the Jenkinsfile's code
            errors << "${name}: ${e.message}".toString()
            log("ERROR: ${e.message}")
            mark('FAILURE')
        }
        String stageStatus = result
        runPost(s.post, name, stageStatus)
        stageStatus = result
        entry.status = stageStatus
        if (stageStatus == 'SUCCESS' && entry.ran == 0 && entry.notRun && !s.stages && !s.parallel) {
            entry.status = 'NOT_RUN'
            entry.reason = "not run (${unavailable.values().toList().unique().join(', ')})"
        }
        result = before
        mark(stageStatus)
        currentStage = previousStage
        env.pop()
    }

    void run(File jenkinsfile) {
        try {
            load(jenkinsfile)
        } catch (PipelineFailure e) {
            errors << "Jenkinsfile: ${e.message}".toString()
            result = 'FAILURE'
            return
        }
        if (!dryRun) log("[harness] triggers: ${triggers.join(', ') ?: 'none'}; options: ${options.join(', ') ?: 'none'}; agent: ${agent}")
        try {
            if (pipelineEnvironment) env.layers[0].putAll(evaluateEnvironment(pipelineEnvironment, 'environment'))
            runStages(stages)
        } catch (PipelineFailure e) {
            errors << e.message
            log("ERROR: ${e.message}")
            mark('FAILURE')
        }
        runPost(post, 'pipeline', result)
        log("Finished: ${result}")
    }

    void flatten(List<StageModel> list, List<Map> into, String parent = null) {
        list.each { s ->
            String name = parent ? "${parent} » ${s.name}" : s.name
            into << [name: name, when: s.when*.toString(), post: s.post?.blocks?.keySet()?.toList() ?: []]
            flatten(s.stages + s.parallel, into, name)
        }
    }

    Map summary() {
        List<Map> model = []
        flatten(stages, model)
        [
            mode: dryRun ? 'parse' : 'run',
            result: result,
            agent: agent?.toString(),
            options: options*.toString(),
            triggers: triggers*.toString(),
            model: model,
            stages: stageResults.collect { it.subMap(['name', 'status', 'reason']) + [not_run: it.notRun] },
            stages_run: stageResults.findAll { it.status in ['SUCCESS', 'FAILURE', 'UNSTABLE'] }*.name,
            stages_skipped: stageResults.findAll { it.status in ['SKIPPED', 'NOT_RUN'] }.collect { [name: it.name, reason: it.reason] },
            sh: shRuns,
            recorded: recorded,
            errors: errors.collect { mask(it) },
        ]
    }

    /** Entry point: `groovy -cp tests/harness/jenkins tests/harness/jenkins/run_pipeline.groovy CONFIG.json`. */
    static int main(Map config) {
        def h = new PipelineHarness(config)
        File jf = new File(config.jenkinsfile as String)
        if (!jf.isAbsolute()) jf = h.workspace.resolve(config.jenkinsfile as String).toFile()
        try {
            // A dry run (parse only) walks every stage and post block, `when` ignored, sh not run.
            h.run(jf)
        } catch (Throwable t) {  // a Groovy error in the Jenkinsfile itself
            h.errors << "${t.class.simpleName}: ${t.message}".toString()
            h.result = 'FAILURE'
        }
        System.out.println(h.mask(JsonOutput.toJson(h.summary())))
        System.out.flush()
        return h.result == 'SUCCESS' ? 0 : 1
    }
}
