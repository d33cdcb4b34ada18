// meterlake: the operator command. See `meterlake help`.
import Core
import LambdaRuntime
import Store
import FoundationEssentials
import Postgres

#if canImport(Glibc)
import Glibc
#endif

let usageText = """
    usage: meterlake COMMAND [ARGUMENTS]

    The operator command of meterlake, the ingestion layer for energy-contract compliance.

    commands:
      seal [--raw]                           read a credential on stdin, print its envelope (base64),
                                             sealed with METERLAKE_ENCRYPTION_KEY; one trailing
                                             newline is dropped unless --raw
      open                                   read an envelope on stdin, print the plaintext; tries
                                             METERLAKE_ENCRYPTION_KEY, then ..._PREVIOUS
      state issue --org N --vendor V         print a signed OAuth state (METERLAKE_STATE_SECRET)
      state verify --vendor V STATE          print the state's payload as JSON, or why it is refused
      local [--lake DIR] [--validator PATH] [--samples DIR] [--fetchers DIR] [--maintenance PATH]
                                             the main job on one machine: drop sample files (good,
                                             partly bad, broken) into a local lake's raw/, run the
                                             built validator on their event, then the built
                                             maintenance function, print the outcome and the
                                             aggregates (needs DATABASE_URL; Tools/local.sh provides one)
      credential add --org N --vendor V      read the credential's plaintext JSON on stdin, check its
                                             members, seal it, store it active; print its id
      credential rekey [--batch N]           re-seal every stored credential under
                                             METERLAKE_ENCRYPTION_KEY (opening with ..._PREVIOUS),
                                             row by row under the refresh lock; says how many remain
      site add --org N --vendor V --site EXT [--time-zone ZONE] [--credential ID]
                                             register (or update) an active site; the credential
                                             defaults to the organisation's one active credential
                                             of that vendor
      aggregates verify [--org N] [--from DAY] [--to DAY]
                                             recompute the aggregates from the readings (hourly, and
                                             daily/monthly where readings are kept, else from the
                                             hourly rows) and list every difference; exit 1 if any
      evidence create --org N --meters ID[,ID…] --from T --to T [--expected-wh X]
                                             archive the meters' readings of a breach period to the
                                             lake and record the evidence (hash, figures from the
                                             aggregates, sample, source files' chain positions)
      evidence verify ID                     re-hash the archive, check it against the row and the
                                             aggregates; says where it differs (works after the
                                             readings are dropped)
      audit verify                           walk the ingestion log's hash chain and name the first
                                             row edited, deleted, inserted or re-ordered
      replay --source S --org N --from DAY --to DAY [--dry-run]
                                             re-derive the rows of the validated files that landed
                                             on those days with today's validator code; --dry-run
                                             says what would be added, changed, removed
      migrate                                apply the database migrations to DATABASE_URL (safe to re-run)
      partitions                             create this and the next two months' reading partitions
                                             and drop those wholly older than 90 days whose
                                             aggregates are final (no pending dirty range)
      help                                   show this text

    vendors: enphase, goodwe, sma, solaredge. Exit status: 0 done, 1 refused, 2 usage error.
    """

/// A failure with its exit status; the message goes to stderr.
struct Failure: Error {
    var message: String
    var status: Int32
    static func usage(_ message: String) -> Failure { Failure(message: "\(message)\n\n\(usageText)", status: 2) }
    static func refused(_ message: String) -> Failure { Failure(message: message, status: 1) }
}

func standardInput() throws(Failure) -> [UInt8] {
    guard let bytes = FileIO.readAll("-") else { throw .refused("cannot read standard input") }
    return bytes
}

/// Parses `--name value` options and positional arguments.
func options(_ arguments: ArraySlice<String>, allowed: Set<String>) throws(Failure) -> (named: [String: String], positional: [String]) {
    var named: [String: String] = [:]
    var positional: [String] = []
    var rest = arguments
    while let argument = rest.popFirst() {
        if argument.hasPrefix("--") {
            let name = String(argument.dropFirst(2))
            guard allowed.contains(name) else { throw .usage("unknown option \(argument)") }
            if name == "raw" || name == "dry-run" { named[name] = "" ; continue }
            guard let value = rest.popFirst() else { throw .usage("\(argument) needs a value") }
            named[name] = value
        } else {
            positional.append(argument)
        }
    }
    return (named, positional)
}

func run(_ arguments: ArraySlice<String>, environment: Environment) throws(Failure) -> String {
    switch arguments.first {
    case nil, "help", "-h", "--help":
        return usageText
    case "seal":
        let parsed = try options(arguments.dropFirst(), allowed: ["raw"])
        guard parsed.positional.isEmpty else { throw .usage("seal takes no arguments; the credential comes on stdin") }
        do {
            let keys = try EnvelopeKeys(environment: environment)
            var plaintext = try standardInput()
            if parsed.named["raw"] == nil {
                if plaintext.last == UInt8(ascii: "\n") { plaintext.removeLast() }
                if plaintext.last == UInt8(ascii: "\r") { plaintext.removeLast() }
            }
            return try CredentialEnvelope.seal(plaintext, keys: keys)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .refused("\(error)")
        }
    case "open":
        guard arguments.count == 1 else { throw .usage("open takes no arguments; the envelope comes on stdin") }
        do {
            let keys = try EnvelopeKeys(environment: environment)
            let text = String(decoding: try standardInput(), as: UTF8.self)
            let envelope = String(text.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
            let plaintext = try CredentialEnvelope.open(envelope, keys: keys)
            return String(decoding: plaintext, as: UTF8.self)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .refused("\(error)")
        }
    case "state":
        return try state(arguments.dropFirst(), environment: environment)
    case "evidence":
        return try TrustCommands.evidence(arguments.dropFirst(), environment: environment)
    case "audit":
        return try TrustCommands.audit(arguments.dropFirst(), environment: environment)
    case "replay":
        return try TrustCommands.replay(arguments.dropFirst(), environment: environment)
    case "aggregates":
        return try AggregateCommands.run(arguments.dropFirst(), environment: environment)
    case "local":
        return try LocalRun.run(arguments.dropFirst(), environment: environment)
    case "credential":
        return try IntegrationCommands.credential(arguments.dropFirst(), environment: environment)
    case "site":
        return try IntegrationCommands.site(arguments.dropFirst(), environment: environment)
    case "migrate", "partitions":
        guard arguments.count == 1 else { throw .usage("\(arguments.first!) takes no arguments") }
        do {
            let connection = try DatabaseSettings(environment: environment).connect()
            if arguments.first == "migrate" {
                let applied = try MigrationRunner.migrate(connection)
                return applied.isEmpty
                    ? "database up to date (\(Migration.all.count) migrations)"
                    : "applied migrations \(applied.map(String.init).joined(separator: ", "))"
            }
            let now = WallClock.milliseconds() / 1000
            let created = try PartitionMaintenance.ensureAhead(now: now, connection: connection)
            let dropped = try PartitionMaintenance.dropExpired(now: now, connection: connection)
            return "created: \(created.isEmpty ? "none" : created.joined(separator: ", "))\n"
                + "dropped: \(dropped.isEmpty ? "none" : dropped.joined(separator: ", "))"
        } catch {
            throw .refused("\(error)")
        }
    case let command?:
        throw .usage("unknown command '\(command)'")
    }
}

func state(_ arguments: ArraySlice<String>, environment: Environment) throws(Failure) -> String {
    let now = WallClock.milliseconds() / 1000
    let signer: OAuthStateSigner
    do { signer = try OAuthStateSigner(environment: environment) } catch { throw .refused("\(error)") }
    switch arguments.first {
    case "issue":
        let parsed = try options(arguments.dropFirst(), allowed: ["org", "vendor"])
        guard let org = parsed.named["org"], let organizationID = Int64(org) else { throw .usage("state issue needs --org N (a positive integer)") }
        guard let vendor = parsed.named["vendor"], parsed.positional.isEmpty else { throw .usage("state issue needs --vendor V") }
        do { return try signer.issue(organizationID: organizationID, vendor: vendor, now: now) } catch { throw .refused("\(error)") }
    case "verify":
        let parsed = try options(arguments.dropFirst(), allowed: ["vendor"])
        guard let vendor = parsed.named["vendor"], parsed.positional.count == 1 else {
            throw .usage("state verify needs --vendor V and one STATE")
        }
        do {
            let payload = try signer.verify(parsed.positional[0], vendor: vendor, now: now)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return String(decoding: try encoder.encode(payload), as: UTF8.self)
        } catch {
            throw .refused("\(error)")
        }
    default:
        throw .usage("state needs 'issue' or 'verify'")
    }
}

do {
    let output = try run(CommandLine.arguments.dropFirst(), environment: Environment())
    LogOutput.standardOutput.write(output + "\n")
} catch {
    LogOutput.standardError.write("meterlake: \(error.message)\n")
    exit(error.status)
}
