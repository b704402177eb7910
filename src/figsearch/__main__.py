from figsearch.cli import main

main()
