from revurb.cli import main

main()
