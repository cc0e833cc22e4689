from extender.cli.commands import main

main()
