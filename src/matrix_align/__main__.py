from matrix_align.cli.app import main

main()
