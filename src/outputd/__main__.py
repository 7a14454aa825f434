from outputd.cli import main

raise SystemExit(main())
