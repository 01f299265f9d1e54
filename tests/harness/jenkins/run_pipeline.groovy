// Runs (or, with "dryRun": true, only parses and walks) a declarative Jenkinsfile with
// PipelineHarness. Usage: groovy -cp tests/harness/jenkins tests/harness/jenkins/run_pipeline.groovy CONFIG.json
// CONFIG: {"jenkinsfile": path, "workspace": dir, "context": {"BRANCH_NAME": ..., "TAG_NAME": ...,
//          "GIT_COMMIT": ...}, "causes": ["TimerTrigger"], "baseEnv": {...}, "credentials":
//          {"ID": "secret" | {"username": u, "password": p}}, "unavailable": {"docker": "no
//          Docker daemon"}, "params": {...}, "dryRun": false}
// Prints the build log, then a JSON summary as the last line; exits 0 on SUCCESS, 1 otherwise.
import groovy.json.JsonSlurper

if (args.length != 1) {
    System.err.println('usage: run_pipeline.groovy CONFIG.json')
    System.exit(2)
}
def config = new JsonSlurper().parse(new File(args[0]))
System.exit(PipelineHarness.main(config as Map))
