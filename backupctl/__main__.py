from backupctl.cli import main

main()
