// The operator command. Each subcommand arrives with the issue that builds its machinery.
import Core

#if canImport(Glibc)
import Glibc
#endif

let usage = """
    usage: meterlake COMMAND [ARGUMENTS]

    The operator command of meterlake, the ingestion layer for energy-contract compliance.

    commands:
      help       show this text
    """

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case nil, "help", "-h", "--help":
    print(usage)
default:
    LogOutput.standardError.write("meterlake: unknown command '\(arguments.first!)'\n\n\(usage)\n")
    exit(2)
}
