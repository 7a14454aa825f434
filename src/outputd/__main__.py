from outputd.cli.main import main

raise SystemExit(main())
